"""Small shared helpers: device choice and seeded random streams."""

from __future__ import annotations

import hashlib

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when present, else CPU; anything else is passed to `torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for CUDA but no CUDA device is available (use 'auto' or 'cpu')")
    return dev


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (seed, stream name, index, ...)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def rng(*parts: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded `torch.Generator` for one named stream, e.g. `rng(seed, "z", 0)`."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g


def randn(shape: tuple[int, ...], *parts: object, device: str | torch.device = "cpu") -> torch.Tensor:
    """Gaussian draw from the stream `parts`, made on the CPU (identical on every device), then moved."""
    return torch.randn(shape, generator=rng(*parts)).to(device)
