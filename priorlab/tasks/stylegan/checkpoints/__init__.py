"""Loading and saving generators, one module per checkpoint format.

Generator specs (`load_generator(spec, device)`):
  random:RES[?key=value&...]   seeded initialisation (keys: seed, z_dim, w_dim, channel_base,
                               channel_max, mapping_layers, noise_strength), small CPU widths
                               (`random_init.py`)
  PATH.pkl[#G]                 NVIDIA stylegan2-ada-pytorch pickle, `G_ema` (or the key after #),
                               read by a restricted unpickler: no code in the file runs (`nvidia.py`)
  PATH.pt / .pth               priorlab's own format (`native.py`), or rosinality's (`g_ema`,
                               `rosinality.py`), both through `torch.load(weights_only=True)`,
                               its cost bounded by the file's size (`torch_file.py`)

Every format ends in `build.build_generator` (config + NVIDIA-layout state dict). Every
failure to load a checkpoint file raises `CheckpointError` (a `ValueError`) with one line
naming the file; `UnsafePickleError` (a `CheckpointError`) when the file was refused as unsafe.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..networks import Generator
from ..nvidia_pickle import CheckpointError, UnsafePickleError, one_line, short_repr
from ..util import resolve_device
from .build import build_generator, params_limit
from .native import FORMAT, FORMAT_VERSION, is_native, load_native, save_generator
from .nvidia import load_nvidia, nvidia_config
from .random_init import random_generator
from .rosinality import from_rosinality, rosinality_config, to_rosinality
from .torch_file import torch_load

__all__ = [
    "CheckpointError", "UnsafePickleError", "FORMAT", "FORMAT_VERSION", "load_generator", "save_generator",
    "load_torch_file", "build_generator", "random_generator", "load_nvidia", "nvidia_config",
    "from_rosinality", "to_rosinality", "rosinality_config",
]


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


def load_torch_file(path: str | Path, key: str | None = None) -> Generator:
    """A .pt/.pth file: priorlab's format, or rosinality's `g_ema` (or `g`, or `key`) state dict."""
    path = Path(path)
    ckpt = torch_load(path)
    if is_native(ckpt):
        return load_native(path, ckpt)
    if isinstance(ckpt, dict):
        key = key or ("g_ema" if "g_ema" in ckpt else "g" if "g" in ckpt else None)
        if key and isinstance(ckpt.get(key), dict) and "style.1.weight" in ckpt[key]:
            return from_rosinality(ckpt[key], latent_avg=ckpt.get("latent_avg"), max_params=params_limit(path))
    found = [short_repr(k) for k in list(ckpt)[:10]] if isinstance(ckpt, dict) else short_repr(ckpt)
    raise CheckpointError(f"{path}: not a known generator checkpoint (expected priorlab's format or rosinality's "
                          f"'g_ema' state dict; found {found})")
