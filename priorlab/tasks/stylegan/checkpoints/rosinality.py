"""rosinality/stylegan2-pytorch `g_ema` state dicts, both ways: the same images as their generator."""

from __future__ import annotations

import torch

from ..networks import Generator, GeneratorConfig
from ..nvidia_pickle import CheckpointError, short_repr
from ..ops import setup_filter
from .build import build_generator, estimate_w_avg


def _rosinality_pairs(cfg: GeneratorConfig) -> list[tuple[str, str]]:
    """(NVIDIA-layout key, rosinality key) for every tensor both layouts hold."""
    pairs = []
    for i in range(cfg.mapping_layers):
        pairs += [(f"mapping.fc{i}.weight", f"style.{i + 1}.weight"), (f"mapping.fc{i}.bias", f"style.{i + 1}.bias")]

    def layer(native: str, ros: str, noise_idx: int) -> list[tuple[str, str]]:
        return [(f"{native}.weight", f"{ros}.conv.weight"),
                (f"{native}.affine.weight", f"{ros}.conv.modulation.weight"),
                (f"{native}.affine.bias", f"{ros}.conv.modulation.bias"),
                (f"{native}.noise_strength", f"{ros}.noise.weight"),
                (f"{native}.noise_const", f"noises.noise_{noise_idx}"),
                (f"{native}.bias", f"{ros}.activate.bias")]

    def torgb(native: str, ros: str) -> list[tuple[str, str]]:
        return [(f"{native}.weight", f"{ros}.conv.weight"),
                (f"{native}.affine.weight", f"{ros}.conv.modulation.weight"),
                (f"{native}.affine.bias", f"{ros}.conv.modulation.bias"),
                (f"{native}.bias", f"{ros}.bias")]

    pairs.append(("synthesis.b4.const", "input.input"))
    pairs += layer("synthesis.b4.conv1", "conv1", 0)
    pairs += torgb("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(cfg.block_resolutions[1:]):
        pairs += layer(f"synthesis.b{res}.conv0", f"convs.{2 * j}", 2 * j + 1)
        pairs += layer(f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        pairs += torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return pairs


def rosinality_config(sd: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Infer the config from a rosinality `g_ema` state dict (lr_mlp assumed 0.01, their default)."""
    n_rgb = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    res = 2 ** (n_rgb + 2)
    n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
    style_dim = sd["style.1.weight"].shape[1]
    chans = {4: sd["input.input"].shape[1]}
    for j in range(n_rgb):
        chans[2 ** (j + 3)] = sd[f"convs.{2 * j}.conv.weight"].shape[1]
    cmax = max(chans.values())
    bases = {c * r for r, c in chans.items() if c < cmax} or {cmax * res}
    base = bases.pop()
    if bases or any(min(base // r, cmax) != c for r, c in chans.items()):
        raise ValueError(f"rosinality checkpoint: channel layout {chans} is not min(base // res, max) for any base")
    return GeneratorConfig(img_resolution=res, z_dim=style_dim, w_dim=style_dim, channel_base=base, channel_max=cmax,
                           mapping_layers=n_mlp)


def _rosinality_kernel_keys(cfg: GeneratorConfig) -> list[str]:
    """The blur (upsampling conv) and upsample (ToRGB skip) kernel buffers of rosinality's generator."""
    keys = []
    for j in range(len(cfg.block_resolutions) - 1):
        keys += [f"convs.{2 * j}.conv.blur.kernel", f"to_rgbs.{j}.upsample.kernel"]
    return keys


def _rosinality_filter(kernels: list[torch.Tensor]) -> list[float]:
    """The 1-D taps behind rosinality's stored kernels (`make_kernel(taps) * 4`), as our `resample_filter`.

    rosinality's Blur and Upsample pad as NVIDIA's upfirdn2d does for any filter length, so a
    separable symmetric kernel maps exactly onto our generator; anything else is refused.
    """
    if not kernels:
        return [1, 3, 3, 1]  # a 4px generator has no resampling
    k = kernels[0].double()
    if k.ndim != 2 or k.shape[0] != k.shape[1] or not 1 <= k.shape[0] <= 16 or not torch.isfinite(k).all():
        raise CheckpointError(f"rosinality checkpoint: blur kernel of shape {list(k.shape)} is not a square "
                              f"filter of at most 16 taps")
    taps = k.sum(dim=0) / 4  # outer(t, t) / sum(t)^2 * 4 sums to 4 t / sum(t) along a column
    rebuilt = torch.outer(taps, taps) * 4
    if any(kk.shape != k.shape or not torch.allclose(kk.double(), k, atol=1e-6) for kk in kernels) \
            or not torch.allclose(rebuilt, k, atol=1e-6) or not torch.allclose(taps, taps.flip(0), atol=1e-6):
        raise CheckpointError("rosinality checkpoint: blur kernels are not one symmetric separable filter "
                              "(make_kernel(taps) * 4, the same in every layer); priorlab cannot reproduce them")
    default = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64) / 8
    if taps.shape == default.shape and torch.allclose(taps, default, atol=1e-6):
        return [1, 3, 3, 1]
    return [float(t) for t in taps]


def from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None, *,
                    max_params: int | None = None) -> Generator:
    """A rosinality/stylegan2-pytorch `g_ema` state dict -> priorlab's generator (same images).

    Without `latent_avg` in the checkpoint, w_avg is estimated as rosinality's own generate.py
    does (`mean_latent(4096)`), from 4096 seeded z. `max_params`: as `build_generator`'s.
    """
    bad = [short_repr(k) for k, v in sd.items() if type(k) is not str or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"rosinality checkpoint: entries that are not named tensors: {bad[:8]}")
    cfg = rosinality_config(sd)
    pairs = _rosinality_pairs(cfg)
    kernels = _rosinality_kernel_keys(cfg)
    missing = [r for _, r in pairs if r not in sd] + [k for k in kernels if k not in sd]
    known = {r for _, r in pairs} | set(kernels)
    unknown = [k for k in sd if k not in known]
    if missing or unknown:
        raise CheckpointError(f"rosinality checkpoint: unknown keys {unknown[:8]}, missing keys {missing[:8]} "
                              f"(for a {cfg.img_resolution}px generator with {cfg.mapping_layers} mapping layers)")
    cfg.resample_filter = _rosinality_filter([sd[k] for k in kernels])
    with torch.device("meta"):
        target = Generator(cfg).state_dict()
    wrong = [r for n, r in pairs if sd[r].numel() != target[n].numel()]
    if wrong:
        raise CheckpointError(f"rosinality checkpoint: tensors of the wrong size for the inferred config: {wrong[:8]}")
    native = {n: sd[r].reshape(target[n].shape) for n, r in pairs}
    if latent_avg is not None and (not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != cfg.w_dim):
        raise CheckpointError(f"rosinality checkpoint: latent_avg is not a tensor of {cfg.w_dim} values")
    native["mapping.w_avg"] = torch.zeros(cfg.w_dim) if latent_avg is None else latent_avg.reshape(-1)
    G = build_generator(cfg, native, max_params=max_params)
    if latent_avg is None:
        estimate_w_avg(G)
    return G


def to_rosinality(G: Generator) -> dict[str, torch.Tensor]:
    """priorlab's generator -> a rosinality `g_ema` state dict (for tests and export)."""
    cfg, sd = G.cfg, G.state_dict()
    out = {}
    for n, r in _rosinality_pairs(cfg):
        t = sd[n].detach().cpu()
        if n.endswith("noise_strength"):
            t = t.reshape(1)
        elif n.endswith("noise_const"):
            t = t.reshape(1, 1, *t.shape)
        elif n.endswith("torgb.bias"):
            t = t.reshape(1, -1, 1, 1)
        elif n.endswith(".weight") and ("conv" in n or "torgb" in n) and "affine" not in n:
            t = t.unsqueeze(0)  # (1, O, I, k, k)
        elif n.endswith(".const"):
            t = t.unsqueeze(0)
        out[r] = t.clone()
    kernel = setup_filter(cfg.resample_filter) * 4  # rosinality's Blur/Upsample kernels, factor^2
    for j in range(len(cfg.block_resolutions) - 1):
        out[f"convs.{2 * j}.conv.blur.kernel"] = kernel.clone()
        out[f"to_rgbs.{j}.upsample.kernel"] = kernel.clone()
    return out
