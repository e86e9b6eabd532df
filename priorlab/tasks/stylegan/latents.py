"""Latent arithmetic and image similarity used by the jobs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a, b: (D,); t: (K,) -> (K, D) points on the segment."""
    return a[None] + t[:, None] * (b - a)[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (the great circle through a and b, magnitudes blended): (K, D)."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    if float(so.abs()) < eps:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a[None] + (torch.sin(t * omega) / so)[:, None] * b[None]


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Root-mean-square pixel difference per image: (N, C, H, W) x2 -> (N,)."""
    return (a - b).square().flatten(1).mean(dim=1).sqrt()


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()  # (size,)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image, averaged over channels: (N, C, H, W) x2 -> (N,).

    Gaussian 11x11 window (sigma 1.5), K1=0.01, K2=0.03, only windows fully inside the image:
    the same numbers as skimage's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=...)`. Images smaller than 11 px
    use the largest odd window that fits.
    """
    n, c, h, w = a.shape
    size = min(11, h - (1 - h % 2), w - (1 - w % 2))
    g = _gaussian_window(size, sigma, a.device)
    kx = g.view(1, 1, 1, size).expand(c, 1, 1, size)
    ky = g.view(1, 1, size, 1).expand(c, 1, size, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable 'valid' Gaussian filter per channel
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    a, b = a.float(), b.float()
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(dim=1)  # (N,)
