"""Loading and saving generators; the `convert` and `generate` functions behind the CLI.

Generator specs (`load_generator(spec, device)`):
  random:RES[?key=value&...]   seeded initialisation (keys: seed, z_dim, w_dim, channel_base,
                               channel_max, mapping_layers, noise_strength), small CPU widths
  PATH.pkl[#G]                 NVIDIA stylegan2-ada-pytorch pickle, `G_ema` (or the key after #),
                               read by a restricted unpickler: no code in the file runs
  PATH.pt / .pth               priorlab's own format, or rosinality's (`g_ema`), both through
                               `torch.load(weights_only=True)`
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch

from . import nvidia_pickle as nv
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
            raise ValueError(f"generator: {spec!r} is neither 'random:RES' nor an existing checkpoint file")
        if path.suffix == ".pkl":
            G = load_nvidia(path, key=key or "G_ema")
        elif path.suffix in (".pt", ".pth"):
            G = load_torch_file(path, key=key or None)
        else:
            raise ValueError(f"generator: {spec!r} has an unknown suffix {path.suffix!r} (allowed: .pkl, .pt, .pth)")
    return G.to(dev).eval().requires_grad_(False)


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
    """A generator from a config and an NVIDIA-layout state dict (strict: every key must fit)."""
    G = Generator(cfg)
    missing, unexpected = G.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not k.endswith("resample_filter")]  # fixed filters: ours are fine
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit the generator: missing {missing[:8]}, unexpected {unexpected[:8]}")
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
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: no network {key!r} in the pickle (found {keys})")
    meta = data[key]
    if not isinstance(meta, nv.PersistentMeta):
        raise ValueError(f"{path}: {key!r} is not a persisted NVIDIA network")
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
        raise ValueError(f"expected an NVIDIA Generator, found class {meta.get('class_name')!r}")
    kwargs = nv.plain(nv.attr(meta, "_init_kwargs") or {})
    syn_kwargs = kwargs.get("synthesis_kwargs") or {}
    map_kwargs = kwargs.get("mapping_kwargs") or {}
    synthesis = nv.submodule(meta, "synthesis")
    if "b4" not in (synthesis["state"].get("_modules") or {}):
        raise ValueError("unsupported generator: the synthesis network has no StyleGAN2 'b4' block "
                         "(StyleGAN3 and other architectures are not supported)")
    arch = syn_kwargs.get("architecture", "skip")
    if arch != "skip":
        raise ValueError(f"unsupported synthesis architecture {arch!r} (supported: skip, as in config-f)")
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
        mapping_activation=str(nv.attr(fc0, "activation", "lrelu")),
        conv_clamp=nv.plain(nv.attr(layer, "conv_clamp", syn_kwargs.get("conv_clamp"))),
        use_noise=bool(nv.attr(layer, "use_noise", True)),
        resample_filter=list(syn_kwargs.get("resample_filter", [1, 3, 3, 1])),
    )


# ---------------------------------------------------------------------------------------------
# .pt files: priorlab's own and rosinality's


def load_torch_file(path: str | Path, key: str | None = None) -> Generator:
    # rosinality's train.py stores its argparse.Namespace next to the weights: harmless, allow it.
    if hasattr(torch.serialization, "safe_globals"):
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    else:  # torch 2.4
        torch.serialization.add_safe_globals([argparse.Namespace])
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        if ckpt.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: format version {ckpt['version']} is newer than this priorlab "
                             f"({FORMAT_VERSION}); upgrade priorlab")
        return build_generator(GeneratorConfig(**ckpt["config"]), ckpt["state_dict"])
    if isinstance(ckpt, dict):
        key = key or ("g_ema" if "g_ema" in ckpt else "g" if "g" in ckpt else None)
        if key and isinstance(ckpt.get(key), dict) and "style.1.weight" in ckpt[key]:
            return from_rosinality(ckpt[key], latent_avg=ckpt.get("latent_avg"))
    found = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise ValueError(f"{path}: not a known generator checkpoint (expected priorlab's format or rosinality's "
                     f"'g_ema' state dict; found {found})")


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


def from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None) -> Generator:
    """A rosinality/stylegan2-pytorch `g_ema` state dict -> priorlab's generator (same images).

    Without `latent_avg` in the checkpoint, w_avg is estimated as rosinality's own generate.py
    does (`mean_latent(4096)`), from 4096 seeded z.
    """
    cfg = rosinality_config(sd)
    G = Generator(cfg)
    target = G.state_dict()
    native = {n: sd[r].reshape(target[n].shape) for n, r in _rosinality_pairs(cfg)}
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
