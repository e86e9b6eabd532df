"""Loading and saving generators, one module per checkpoint format.

Generator specs (`load_generator(spec, device)`):
  random:RES[?key=value&...]   seeded initialisation (keys: seed, z_dim, w_dim, channel_base,
                               channel_max, mapping_layers, noise_strength), small CPU widths
                               (`random_init.py`)
  PATH.pkl[#G]                 NVIDIA stylegan2-ada-pytorch pickle, `G_ema` (or the key after #),
                               read by a restricted unpickler: no code in the file runs (`nvidia.py`)
  PATH.pt / .pth               priorlab's own format (`native.py`), or rosinality's (`g_ema`,
                               `rosinality.py`), both through `torch.load(weights_only=True)`

Every format ends in `build.build_generator` (config + NVIDIA-layout state dict). Every
failure to load a checkpoint file raises `CheckpointError` (a `ValueError`) with one line
naming the file; `UnsafePickleError` (a `CheckpointError`) when the file was refused as unsafe.
"""

from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path

import torch

from ..networks import Generator
from ..nvidia_pickle import CheckpointError, UnsafePickleError, one_line, short_repr
from ..util import resolve_device
from .build import build_generator
from .native import FORMAT, FORMAT_VERSION, is_native, load_native, save_generator
from .nvidia import load_nvidia, nvidia_config
from .random_init import random_generator
from .rosinality import from_rosinality, rosinality_config, to_rosinality

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
    ckpt = _torch_load(path)
    if is_native(ckpt):
        return load_native(path, ckpt)
    if isinstance(ckpt, dict):
        key = key or ("g_ema" if "g_ema" in ckpt else "g" if "g" in ckpt else None)
        if key and isinstance(ckpt.get(key), dict) and "style.1.weight" in ckpt[key]:
            return from_rosinality(ckpt[key], latent_avg=ckpt.get("latent_avg"))
    found = [short_repr(k) for k in list(ckpt)[:10]] if isinstance(ckpt, dict) else short_repr(ckpt)
    raise CheckpointError(f"{path}: not a known generator checkpoint (expected priorlab's format or rosinality's "
                          f"'g_ema' state dict; found {found})")


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
