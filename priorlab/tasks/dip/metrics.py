"""PSNR and SSIM in torch, on the device, equal to scikit-image's with data_range=1.

They return 0-d tensors so the fit loop can gather all of a step's metrics and copy them
to the host in one sync.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """10 log10(1 / MSE) with peak 1.0. `mask` (1, 1, H, W) restricts the MSE to where it is 1."""
    err = (x.float() - y.float()).square()  # (N, C, H, W)
    if mask is None:
        mse = err.mean()
    else:
        mse = (err * mask).sum() / (mask.sum() * err.shape[0] * err.shape[1])
    return -10.0 * torch.log10(mse)


def _window(gaussian: bool, device: torch.device) -> torch.Tensor:
    """1-D window of skimage's structural_similarity: uniform 7, or Gaussian sigma 1.5 (11 taps)."""
    if not gaussian:
        return torch.full((7,), 1 / 7, device=device)
    # scipy's gaussian_filter(sigma=1.5, truncate=3.5) has radius int(3.5 * 1.5 + 0.5) = 5.
    x = torch.arange(-5, 6, device=device, dtype=torch.float32)
    w = torch.exp(-0.5 * (x / 1.5) ** 2)
    return w / w.sum()


def _filter(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of (N, C, H, W) per channel.

    skimage filters with reflected borders and then crops (win-1)/2 pixels from each side;
    the values it keeps never touch a border, so no padding here gives the same numbers.
    """
    c, k = x.shape[1], w.numel()
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, gaussian: bool = False) -> torch.Tensor:
    """Mean SSIM over channels and pixels, as structural_similarity(channel_axis=, data_range=1)
    with its defaults (7x7 uniform window, sample covariance, K1=0.01, K2=0.03);
    `gaussian=True` matches gaussian_weights=True."""
    x, y = x.float(), y.float()
    w = _window(gaussian, x.device)
    n = w.numel() ** 2
    cov_norm = n / (n - 1)  # skimage's use_sample_covariance=True
    ux, uy = _filter(x, w), _filter(y, w)
    vx = cov_norm * (_filter(x * x, w) - ux * ux)
    vy = cov_norm * (_filter(y * y, w) - uy * uy)
    vxy = cov_norm * (_filter(x * y, w) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean()

