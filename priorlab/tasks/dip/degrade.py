"""Corrupting the clean image: the inputs of both DIP and the classical baselines.

Both draw from the same seeded stream, so a `dip` run and a `dip-baseline` run with equal
(image, size, task, noise, sigma, region, region_place, seed) see the very same corrupted image.

Noise types (`sigma` is the one strength knob; images in [0, 1]; every result is clipped to
[0, 1] like the DIP paper's Gaussian noise):
    gaussian  x + sigma * N(0, 1)                     sigma = the noise std
    poisson   Poisson(peak * x) / peak, peak = 0.5 / sigma**2
              (shot noise; the std at mid-gray, sqrt(0.5 / peak), equals sigma)
    impulse   salt and pepper: each value is replaced, with probability sigma, by 0 or 1
              (equally likely); sigma = the corrupted fraction
    speckle   x + x * sigma * N(0, 1)                 sigma = the multiplicative std
"""

from __future__ import annotations

import torch

from priorlab import vocab
from priorlab.tasks.dip import inputs
from priorlab.tasks.sink import Sink


def seeded(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """An independent generator per purpose, so e.g. changing sigma leaves the weights alone."""
    return torch.Generator(device).manual_seed(seed * 1000 + stream)


STREAM_CORRUPT, STREAM_WEIGHTS, STREAM_INPUT, STREAM_REG_NOISE, STREAM_DETECTORS = 0, 1, 2, 3, 4
NOISES = ("gaussian", "poisson", "impulse", "speckle")


def poisson_peak(sigma: float) -> float:
    """The Poisson peak (photons at white) whose noise std at mid-gray is `sigma`."""
    return 0.5 / sigma**2


def add_noise(clean: torch.Tensor, sigma: float, g: torch.Generator, noise: str = "gaussian") -> torch.Tensor:
    """`clean` corrupted by noise of type `noise` and strength `sigma` (module doc), clipped
    to [0, 1]. Drawn with `g` on `clean`'s device; the Gaussian draw is the historic one."""
    if sigma == 0:
        return clean.clone()
    shape, dev = clean.shape, clean.device
    if noise == "gaussian":
        return (clean + sigma * torch.randn(shape, generator=g, device=dev)).clamp_(0, 1)
    if noise == "poisson":
        peak = poisson_peak(sigma)
        return (torch.poisson(clean.clamp(0, 1) * peak, generator=g) / peak).clamp_(0, 1)
    if noise == "impulse":
        hit = torch.rand(shape, generator=g, device=dev) < sigma
        salt = (torch.rand(shape, generator=g, device=dev) < 0.5).to(clean.dtype)
        return torch.where(hit, salt, clean)
    if noise == "speckle":
        return (clean + clean * sigma * torch.randn(shape, generator=g, device=dev)).clamp_(0, 1)
    raise ValueError(f"noise: {noise!r} is not one of {', '.join(NOISES)}")


def hole_mask(size: int | tuple[int, int], region: int, place: str, g: torch.Generator) -> torch.Tensor:
    """(1, 1, H, W) (size: H = W, or (H, W)): 1 on known pixels, 0 in a `region`x`region` hole."""
    h, w = (size, size) if isinstance(size, int) else size
    if place == "centre":
        top, left = (h - region) // 2, (w - region) // 2
    elif h == w:  # "random": anywhere the whole square fits (one draw of two: square holes as before)
        top, left = torch.randint(0, h - region + 1, (2,), generator=g).tolist()
    else:
        top = int(torch.randint(0, h - region + 1, (1,), generator=g))
        left = int(torch.randint(0, w - region + 1, (1,), generator=g))
    mask = torch.ones(1, 1, h, w)
    mask[..., top : top + region, left : left + region] = 0
    return mask


def corrupt(
    clean: torch.Tensor, task: str, sigma: float, region: int | None, place: str | None, seed: int,
    noise: str = "gaussian", mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1, 3, H, W) clean -> (corrupted (1, 3, H, W), mask (1, 1, H, W) or None for denoising).

    Inpainting adds the noise first, then blanks the hole to 0 (the report's black_out_region):
    the user's `mask` when given, else a `region` square.
    """
    g = seeded(seed, STREAM_CORRUPT)
    corrupted = add_noise(clean, sigma, g, noise)
    if task == "denoise":
        return corrupted, None
    if mask is None:
        mask = hole_mask(tuple(clean.shape[-2:]), region, place, g)
    return corrupted * mask, mask


def prepare(p, sink: Sink) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """The images of a run's parameters (`BaseParams`), corrupted here unless the user gave
    the corrupted file, reported once at step 0: (clean or None without a reference,
    corrupted, mask or None), all on the CPU (see `priorlab.tasks.dip.inputs`)."""
    clean, corrupted, mask = inputs.load(p)  # (1, 3, H, W), (1, 3, H, W) or None, (1, 1, H, W) or None
    if corrupted is None:
        corrupted, mask = corrupt(clean, p.task, p.sigma, p.region, p.region_place, p.seed, p.noise, mask)
    if clean is not None:
        sink.artifact(0, vocab.CLEAN, clean)
    sink.artifact(0, vocab.CORRUPTED, corrupted)
    if mask is not None:
        sink.artifact(0, vocab.MASK, mask.expand(1, 3, -1, -1))
    return clean, corrupted, mask
