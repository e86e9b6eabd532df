"""The noise level of a corrupted image, estimated from that image alone (`sigma: auto`).

The estimate is in the units `sigma` has for the stated noise type (see
`priorlab.tasks.dip.degrade`), so the discrepancy detector (`dp`) can use it as if the user had
given it:

    gaussian  scikit-image's `estimate_sigma` (Donoho & Johnstone 1994: the median absolute
              finest-scale diagonal wavelet coefficient / 0.6745, db2 wavelet, per channel,
              averaged). Known bias: the finest diagonal band also holds the image's own
              fine texture and edges, so it *over*-estimates on textured images and at low
              noise (where that texture is a large share of the band); clipping to [0, 1]
              removes noise in dark and bright areas, so it *under*-estimates strong noise on
              images with saturated regions. That second bias is modelled here (`_censored`):
              the noise of a pixel whose clean value is m is clip(m + sigma Z, 0, 1), whose
              std `clip_scale(m, sigma) * sigma` is known in closed form (a censored normal);
              each detail coefficient is divided by that factor at its area's mean before the
              median is taken, and sigma re-solved a few times. Areas where clipping leaves
              under MIN_SCALE of the noise (nearly black or white) are left out, and so are
              edges (details beyond EDGE_MARGIN). Dropping clipped areas instead (a margin of
              2 sigma from 0 and 1) leaves nothing at sigma 0.25: -15.5% there vs -12.1% now.
              Measured on the bundled images: tests/benchmarks/bench_blind.py.
              (`_donoho`, the plain estimator with CLIP_MARGIN, is kept for poisson/speckle,
              whose rescaled values are no longer clipped at 0 and 1.)
    poisson   the noise std at intensity x is sigma * sqrt(2x) (sigma = the std at mid-gray),
    speckle   ... and sigma * x for speckle: the image is divided by that signal-dependent
              scale, taken from a smoothed copy (Gaussian, SMOOTH_PX), which makes the noise
              homoscedastic with std sigma, and then measured as Gaussian noise. The
              smoothing lets some noise into the scale and darkest pixels are floored at
              FLOOR, so the estimate is rougher than the Gaussian one.
    impulse   the corrupted fraction: the share of values at exactly 0 or 1 that differ from
              their 3x3 median by more than JUMP, divided by the share of impulses that
              would be visible at all there (a white impulse on a white pixel is not).

Pure numpy/scipy/scikit-image on the CPU: called once per run, before the fit.
"""

from __future__ import annotations

import numpy as np
import torch

SMOOTH_PX = 2.0  # std (pixels) of the smoothing that gives poisson/speckle their local scale
CLIP_MARGIN = 2.0  # gaussian: coefficients this many stds from 0 and 1 see (almost) unclipped noise
EDGE_MARGIN = 2.5  # ... and whose horizontal+vertical detail magnitude is below this many stds
MIN_COEFFS = 64
MIN_SCALE = 0.5  # gaussian: leave out areas where clipping keeps less than this share of the noise std
REFINE = 3  # refinements: each picks the areas with the previous estimate  # ... and are used only when at least this many are left per channel
FLOOR = 0.02  # intensities below this take this scale: no division by ~0 in black areas
JUMP = 0.2  # an impulse differs from its neighbourhood's median by more than this


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.detach().to("cpu", torch.float64)[0].permute(1, 2, 0).numpy()  # (1, 3, H, W) -> (H, W, 3)


def _gaussian(a: np.ndarray, image: np.ndarray) -> float:
    """scikit-image's estimate_sigma of `a` (poisson/speckle noise rescaled to std sigma), refined
    over flat, unclipped areas of `image`, the corrupted image itself (module doc)."""
    from skimage.restoration import estimate_sigma

    sigma = float(estimate_sigma(a, channel_axis=-1, average_sigmas=True))
    for _ in range(REFINE):  # the first estimate is biased by clipping, so are the areas it picks
        sigma = _donoho(a, image, sigma) or sigma
    return sigma


def clip_scale(level: np.ndarray, sigma: float) -> np.ndarray:
    """std(clip(level + sigma Z, 0, 1)) / sigma, Z standard normal: the share of the noise that
    clipping to [0, 1] leaves at a clean value `level` (censored-normal moments)."""
    from scipy.stats import norm

    lo, hi = (0 - level) / sigma, (1 - level) / sigma
    p_lo, p_hi, d_lo, d_hi = norm.cdf(lo), norm.cdf(hi), norm.pdf(lo), norm.pdf(hi)
    inside = p_hi - p_lo
    m1 = level * inside + sigma * (d_lo - d_hi) + (1 - p_hi)
    m2 = (level ** 2 * inside + 2 * level * sigma * (d_lo - d_hi)
          + sigma ** 2 * (inside + lo * d_lo - hi * d_hi) + (1 - p_hi))
    return np.sqrt(np.maximum(m2 - m1 ** 2, 0)) / sigma


def _censored(a: np.ndarray) -> float:
    """Gaussian noise under clipping (module doc): each db2 `dd` coefficient over the noise std
    clipping leaves at its area's level, median / Phi^-1(0.75), channel mean; re-solved REFINE
    times from scikit-image's estimate."""
    import pywt
    from scipy.stats import norm
    from skimage.restoration import estimate_sigma

    sigma = float(estimate_sigma(a, channel_axis=-1, average_sigmas=True))
    for _ in range(2 * REFINE):
        sigmas = []
        for c in range(a.shape[2]):
            bands = pywt.dwtn(a[:, :, c], wavelet="db2")
            level = np.clip(bands["aa"] / 2, 0, 1)  # db2's approximation is twice the local mean
            scale = clip_scale(level, sigma)
            edge = np.hypot(bands["ad"], bands["da"]) / (sigma * np.maximum(scale, 1e-3))
            usable = (bands["dd"] != 0) & (scale >= MIN_SCALE)
            keep = usable & (edge <= EDGE_MARGIN)
            keep = keep if keep.sum() >= MIN_COEFFS else usable  # a busy image: keep its edges
            if keep.sum() < MIN_COEFFS:
                return sigma
            sigmas.append(np.median(np.abs(bands["dd"][keep]) / scale[keep]) / norm.ppf(0.75))
        sigma = max(float(np.mean(sigmas)), 1e-6)
    return sigma


def _donoho(a: np.ndarray, image: np.ndarray, sigma: float | None = None) -> float | None:
    """estimate_sigma's computation on `a` (db2 `dd` band, zeros dropped, median / Phi^-1(0.75),
    channel mean); given a first estimate `sigma`, only over the coefficients where `image` is
    CLIP_MARGIN * sigma inside [0, 1] and `a`'s horizontal and vertical details are within
    EDGE_MARGIN * sigma of zero (no edge or texture there). None when too few are left."""
    import pywt
    from scipy.stats import norm

    sigmas = []
    for c in range(a.shape[2]):
        bands = pywt.dwtn(a[:, :, c], wavelet="db2")
        dd, keep = bands["dd"], bands["dd"] != 0
        if sigma is not None:
            level = pywt.dwtn(image[:, :, c], wavelet="db2")["aa"] / 2  # db2's approximation is twice the mean
            edge = np.hypot(bands["ad"], bands["da"]) / sigma
            keep &= (level >= CLIP_MARGIN * sigma) & (level <= 1 - CLIP_MARGIN * sigma) & (edge <= EDGE_MARGIN)
        if keep.sum() < MIN_COEFFS:
            return None
        sigmas.append(np.median(np.abs(dd[keep])) / norm.ppf(0.75))
    return float(np.mean(sigmas))


def _scaled(a: np.ndarray, noise: str) -> np.ndarray:
    """`a` divided by its noise's signal-dependent scale (module doc): std sigma everywhere."""
    from scipy.ndimage import gaussian_filter

    level = np.maximum(gaussian_filter(a, sigma=(SMOOTH_PX, SMOOTH_PX, 0)), FLOOR)
    return a / (np.sqrt(2 * level) if noise == "poisson" else level)


def _impulse(a: np.ndarray) -> float:
    from scipy.ndimage import median_filter

    med = median_filter(a, size=(3, 3, 1), mode="reflect")
    hits = ((a == 0) | (a == 1)) & (np.abs(a - med) > JUMP)
    visible = 0.5 * ((med > JUMP).mean() + (med < 1 - JUMP).mean())  # pepper shows on light, salt on dark
    return float(hits.mean() / max(visible, 1e-6))


def estimate(corrupted: torch.Tensor, noise: str = "gaussian") -> float:
    """The noise level of `corrupted` (1, 3, H, W) in [0, 1], in `sigma`'s units for `noise`."""
    a = _hwc(corrupted)
    if noise == "gaussian":
        return _censored(a)
    if noise in ("poisson", "speckle"):
        return _gaussian(_scaled(a, noise), image=a)
    if noise == "impulse":
        return min(1.0, _impulse(a))
    raise ValueError(f"noise: {noise!r} is not one of gaussian, poisson, impulse, speckle")
