"""Loading and saving generators; the `convert` and `generate` functions behind the CLI.

Generator specs (`load_generator(spec, device)`):
  random:RES[?key=value&...]   seeded initialisation (keys: seed, z_dim, w_dim, channel_base,
                               channel_max, mapping_layers, noise_strength), small CPU widths
  PATH.pkl[#G]                 NVIDIA stylegan2-ada-pytorch pickle, `G_ema` (or the key after #),
                               read by a restricted unpickler: no code in the file runs
  PATH.pt / .pth               priorlab's own format, or rosinality's (`g_ema`), both through
                               `torch.load(weights_only=True)`

Every failure to load a checkpoint file raises `CheckpointError` (a `ValueError`) with one line
naming the file; `UnsafePickleError` (a `CheckpointError`) when the file was refused as unsafe.
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch

from . import nvidia_pickle as nv
from .nvidia_pickle import CheckpointError, UnsafePickleError, one_line, short_repr
from .networks import Generator, GeneratorConfig
from .ops import setup_filter
from .util import resolve_device

FORMAT = "priorlab-stylegan2"
FORMAT_VERSION = 1

RANDOM_DEFAULTS = dict(seed=0, z_dim=64, w_dim=64, channel_base=2048, channel_max=64, mapping_layers=8,
                       noise_strength=0.1)
W_AVG_SAMPLES = 4096  # samples behind w_avg when a checkpoint has none (rosinality's mean_latent(4096))


# ---------------------------------------------------------------------------------------------
# Dispatch


def load_generator(spec: str, device: str | torch.device = "cpu") -> Generator:
    """A generator from a spec (see the module docstring), in eval mode without gradients."""
    dev = resolve_device(device)
    spec = str(spec)
    if spec.startswith("random:"):
        G = random_generator(spec)
    else:
        path_text, _, key = spec.partition("#")
        path = Path(path_text).expanduser()
        if not path.is_file():
            raise CheckpointError(f"generator: {spec!r} is neither 'random:RES' nor an existing checkpoint file")
        if path.suffix not in (".pkl", ".pt", ".pth"):
            raise CheckpointError(f"generator: {spec!r} has an unknown suffix {path.suffix!r} "
                                  f"(allowed: .pkl, .pt, .pth)")
        G = _load_file(path, key)
    return G.to(dev).eval().requires_grad_(False)


def _load_file(path: Path, key: str) -> Generator:
    """Any failure becomes one `CheckpointError` line that names the file."""
    try:
        if path.suffix == ".pkl":
            return load_nvidia(path, key=key or "G_ema")
        return load_torch_file(path, key=key or None)
    except CheckpointError as e:
        text = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
        raise type(e)(one_line(text)) from None
    except Exception as e:  # a malformed file surfaces as KeyError/TypeError/RuntimeError deep inside
        text = f"{path}: not a usable generator checkpoint ({type(e).__name__}: {e})"
        raise CheckpointError(one_line(text)) from None


def save_generator(G: Generator, path: str | Path, source: str | None = None) -> Path:
    """priorlab's format: the state dict and the config record, with a format version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": G.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()},
        "source": source,
    }
    torch.save(record, path)
    return path


def build_generator(cfg: GeneratorConfig, state_dict: dict[str, torch.Tensor]) -> Generator:
    """A generator from a config and an NVIDIA-layout state dict (strict: every key must fit).

    The config is checked against the tensors' shapes on the meta device first, so a config
    read from a file can never make us allocate more than the file's own tensors.
    """
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError("the state dict is not a dict of tensors")
    blocks = int(math.log2(cfg.img_resolution)) - 1
    if cfg.mapping_layers > len(state_dict) or 2 * blocks > len(state_dict) or len(cfg.resample_filter) > 16:
        raise CheckpointError(f"config (resolution {cfg.img_resolution}, {cfg.mapping_layers} mapping layers, "
                              f"{len(cfg.resample_filter)}-tap filter) does not fit {len(state_dict)} tensors")
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Generator(cfg).state_dict().items()}
    wrong = [f"{k} {list(v.shape)} (expected {list(shapes[k])})" for k, v in state_dict.items()
             if k in shapes and v.shape != shapes[k]]
    missing = [k for k in shapes if k not in state_dict and not k.endswith("resample_filter")]  # fixed filters: ours
    unexpected = [k for k in state_dict if k not in shapes]
    if missing or unexpected or wrong:
        raise CheckpointError(f"checkpoint does not fit the generator: missing {missing[:8]}, unexpected "
                              f"{unexpected[:8]}, wrong shape {wrong[:4]}")
    G = Generator(cfg)
    G.load_state_dict(state_dict, strict=False)
    return G


# ---------------------------------------------------------------------------------------------
# random:RES


def random_generator(spec: str) -> Generator:
    """`random:RES[?seed=..&z_dim=..]`: seeded NVIDIA-style initialisation, calibrated for use.

    Weights ~ N(0, 1) as in NVIDIA's constructors; noise strengths set to `noise_strength`;
    ToRGB weights scaled so images have a standard deviation of about 0.5 (in [-1, 1] units);
    `w_avg` = the mean of mapping(z) over 4096 seeded z. Same spec, same weights.
    """
    body = spec[len("random:"):]
    res_text, _, query = body.partition("?")
    try:
        res = int(res_text)
    except ValueError:
        raise ValueError(f"generator: {spec!r}: resolution {res_text!r} is not an integer (e.g. random:32)") from None
    opts = dict(RANDOM_DEFAULTS)
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in RANDOM_DEFAULTS:
            raise ValueError(f"generator: {spec!r}: unknown option {key!r} (allowed: {', '.join(RANDOM_DEFAULTS)})")
        opts[key] = type(RANDOM_DEFAULTS[key])(value)
    cfg = GeneratorConfig(img_resolution=res, z_dim=opts["z_dim"], w_dim=opts["w_dim"],
                          channel_base=opts["channel_base"], channel_max=opts["channel_max"],
                          mapping_layers=opts["mapping_layers"])
    seed = int(opts["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(cfg).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(opts["noise_strength"])
        z = torch.randn(W_AVG_SAMPLES, cfg.z_dim, generator=g)  # (4096, z_dim)
        G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))
        img = G(z[:64], noise_mode="const")  # (64, 3, R, R)
        gain = 0.5 / float(img.std())
        for name, p in G.named_parameters():
            if ".torgb." in name and name.endswith("torgb.weight"):
                p.mul_(gain)
    return G


# ---------------------------------------------------------------------------------------------
# NVIDIA pickles


def load_nvidia(path: str | Path, key: str = "G_ema") -> Generator:
    data = nv.load_pickle(path)
    if not isinstance(data, dict) or key not in data:
        keys = [short_repr(k) for k in list(data)[:10]] if isinstance(data, dict) else short_repr(data)
        raise CheckpointError(f"{path}: no network {key!r} in the pickle (found {keys})")
    meta = data[key]
    if not isinstance(meta, nv.PersistentMeta):
        raise CheckpointError(f"{path}: {key!r} is not a persisted NVIDIA network")
    cfg = nvidia_config(meta)
    sd = nv.flatten_state(meta)
    if "mapping.w_avg" not in sd:
        G = build_generator(cfg, {**sd, "mapping.w_avg": torch.zeros(cfg.w_dim)})
        _estimate_w_avg(G)
        return G
    return build_generator(cfg, sd)


def nvidia_config(meta: nv.PersistentMeta) -> GeneratorConfig:
    """Config from the persisted Generator: its init kwargs plus attributes of its submodules."""
    if meta.get("class_name") != "Generator":
        raise CheckpointError(f"expected an NVIDIA Generator, found class {short_repr(meta.get('class_name'))}")
    kwargs = _dict(nv.plain(nv.attr(meta, "_init_kwargs") or {}), "_init_kwargs")
    syn_kwargs = _dict(kwargs.get("synthesis_kwargs") or {}, "synthesis_kwargs")
    map_kwargs = _dict(kwargs.get("mapping_kwargs") or {}, "mapping_kwargs")
    synthesis = nv.submodule(meta, "synthesis")
    if "b4" not in (synthesis["state"].get("_modules") or {}):
        raise CheckpointError("unsupported generator: the synthesis network has no StyleGAN2 'b4' block "
                              "(StyleGAN3 and other architectures are not supported)")
    arch = syn_kwargs.get("architecture", "skip")
    if arch != "skip":
        raise CheckpointError(f"unsupported synthesis architecture {short_repr(arch)} "
                              f"(supported: skip, as in config-f)")
    taps = syn_kwargs.get("resample_filter", [1, 3, 3, 1])
    if not isinstance(taps, list) or not 1 <= len(taps) <= 16 or not all(
            type(t) in (int, float) and math.isfinite(t) for t in taps):
        raise CheckpointError(f"resample_filter: expected 1 to 16 numbers, found {short_repr(taps)}")
    activation = nv.attr(nv.submodule(meta, "mapping.fc0"), "activation", "lrelu")
    if not isinstance(activation, str):
        raise CheckpointError(f"mapping activation: expected a name, found {short_repr(activation)}")
    mapping = nv.submodule(meta, "mapping")
    fc0 = nv.submodule(meta, "mapping.fc0")
    layer = nv.submodule(meta, "synthesis.b4.conv1")
    num_layers = int(nv.plain(nv.attr(mapping, "num_layers", map_kwargs.get("num_layers", 8))))
    c_dim = int(nv.plain(nv.attr(meta, "c_dim", kwargs.get("c_dim", 0))))
    hidden = fc0["state"]["_parameters"]["weight"].shape[0] if num_layers > 1 else None
    embed = None
    if c_dim > 0:
        embed = nv.submodule(meta, "mapping.embed")["state"]["_parameters"]["weight"].shape[0]
    return GeneratorConfig(
        img_resolution=int(nv.plain(nv.attr(meta, "img_resolution", kwargs.get("img_resolution")))),
        z_dim=int(nv.plain(nv.attr(meta, "z_dim", kwargs.get("z_dim")))),
        w_dim=int(nv.plain(nv.attr(meta, "w_dim", kwargs.get("w_dim")))),
        c_dim=c_dim,
        img_channels=int(nv.plain(nv.attr(meta, "img_channels", kwargs.get("img_channels", 3)))),
        channel_base=int(syn_kwargs.get("channel_base", 32768)),
        channel_max=int(syn_kwargs.get("channel_max", 512)),
        mapping_layers=num_layers,
        mapping_lr_multiplier=float(nv.plain(nv.attr(fc0, "bias_gain", map_kwargs.get("lr_multiplier", 0.01)))),
        mapping_layer_features=hidden,
        mapping_embed_features=embed,
        mapping_activation=activation,
        conv_clamp=_optional_float(nv.plain(nv.attr(layer, "conv_clamp", syn_kwargs.get("conv_clamp"))), "conv_clamp"),
        use_noise=bool(nv.attr(layer, "use_noise", True)),
        resample_filter=list(taps),
    )


def _dict(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"{what}: expected a dict, found {short_repr(value)}")
    return value


def _optional_float(value: object, what: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CheckpointError(f"{what}: expected a number or None, found {short_repr(value)}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# .pt files: priorlab's own and rosinality's


def _torch_load(path: Path) -> object:
    """`torch.load(weights_only=True)`, its refusals and failures said in one line."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        # rosinality's train.py stores its argparse.Namespace next to the weights: harmless, allow it.
        if hasattr(torch.serialization, "safe_globals"):
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
        torch.serialization.add_safe_globals([argparse.Namespace])  # torch 2.4
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's own text advises weights_only=False: we never do that
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise UnsafePickleError(f"{path}: refused: the file holds objects other than tensors{what}; priorlab "
                                f"loads only weights and never runs code from a checkpoint") from None
    except Exception as e:
        raise CheckpointError(one_line(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})")) from None


def load_torch_file(path: str | Path, key: str | None = None) -> Generator:
    path = Path(path)
    ckpt = _torch_load(path)
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        return _load_priorlab(path, ckpt)
    if isinstance(ckpt, dict):
        key = key or ("g_ema" if "g_ema" in ckpt else "g" if "g" in ckpt else None)
        if key and isinstance(ckpt.get(key), dict) and "style.1.weight" in ckpt[key]:
            return from_rosinality(ckpt[key], latent_avg=ckpt.get("latent_avg"))
    found = [short_repr(k) for k in list(ckpt)[:10]] if isinstance(ckpt, dict) else short_repr(ckpt)
    raise CheckpointError(f"{path}: not a known generator checkpoint (expected priorlab's format or rosinality's "
                          f"'g_ema' state dict; found {found})")


def _load_priorlab(path: Path, ckpt: dict) -> Generator:
    version = ckpt.get("version")
    if type(version) is not int:
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: 'version' is {short_repr(version)}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this priorlab "
                              f"({FORMAT_VERSION}); upgrade priorlab")
    config, sd = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config, dict) or not isinstance(sd, dict):
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: expected dicts under 'config' and "
                              f"'state_dict', found {short_repr(config)} and {short_repr(sd)}")
    fields = set(GeneratorConfig.__dataclass_fields__)
    unknown = [k for k in config if k not in fields]
    if unknown:
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: unknown config keys "
                              f"{[short_repr(k) for k in unknown[:8]]} (allowed: {', '.join(sorted(fields))})")
    try:
        cfg = GeneratorConfig(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(one_line(f"{path}: malformed priorlab checkpoint: {e}")) from None
    return build_generator(cfg, sd)


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


def from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None) -> Generator:
    """A rosinality/stylegan2-pytorch `g_ema` state dict -> priorlab's generator (same images).

    Without `latent_avg` in the checkpoint, w_avg is estimated as rosinality's own generate.py
    does (`mean_latent(4096)`), from 4096 seeded z.
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
    G = build_generator(cfg, native)
    if latent_avg is None:
        _estimate_w_avg(G)
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


def _estimate_w_avg(G: Generator) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = torch.randn(W_AVG_SAMPLES, G.z_dim, generator=g)
        G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))


# ---------------------------------------------------------------------------------------------
# CLI functions


def convert(in_path: str, out_path: str | Path) -> Path:
    """Any loadable spec (NVIDIA .pkl, rosinality .pt, random:RES) -> priorlab's format."""
    G = load_generator(in_path, device="cpu")
    return save_generator(G, out_path, source=str(in_path))


def nvidia_z(seed: int, z_dim: int) -> np.ndarray:
    """The z NVIDIA's generate.py draws for a seed: `RandomState(seed).randn(1, z_dim)` (float64)."""
    return np.random.RandomState(seed).randn(1, z_dim)


def generate(checkpoint: str, seeds: list[int], truncation: float = 1.0, noise_mode: str = "const",
             out_dir: str | Path = "out", raw: bool = False, device: str = "auto",
             class_idx: int | None = None) -> list[Path]:
    """One PNG per seed (`seed0042.png`, as NVIDIA's generate.py); with `raw`, also `raw.npy`:
    float32 (N, 3, H, W), the generator output before the 8-bit conversion."""
    from PIL import Image

    dev = resolve_device(device)
    G = load_generator(checkpoint, device=dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = None
    if G.c_dim > 0:
        if class_idx is None:
            raise ValueError(f"class_idx: the generator is conditional (c_dim={G.c_dim}); give a class index")
        c = torch.zeros(1, G.c_dim, device=dev)
        c[0, class_idx] = 1
    paths, raws = [], []
    with torch.no_grad():
        for seed in seeds:
            z = torch.from_numpy(nvidia_z(seed, G.z_dim)).to(dev)  # (1, z_dim) float64 as NVIDIA
            img = G(z, c, truncation_psi=truncation, noise_mode=noise_mode)  # (1, 3, H, W)
            raws.append(img[0].float().cpu().numpy())
            u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
            path = out / f"seed{seed:04d}.png"
            Image.fromarray(u8 if u8.shape[2] == 3 else u8[:, :, 0]).save(path)
            paths.append(path)
    if raw:
        path = out / "raw.npy"
        np.save(path, np.stack(raws).astype(np.float32))  # (N, 3, H, W)
        paths.append(path)
    return paths


def describe(G: Generator) -> dict:
    """A flat description for logs and summaries."""
    cfg = G.cfg
    return {"resolution": cfg.img_resolution, "z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "num_ws": cfg.num_ws,
            "params": int(sum(p.numel() for p in G.parameters())),
            "channels": ",".join(str(cfg.channels(r)) for r in cfg.block_resolutions),
            "log2_res": int(math.log2(cfg.img_resolution))}
