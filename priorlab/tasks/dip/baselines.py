"""Classical restorations on exactly the degradation a DIP run sees (same seed, same image).

    nlm         non-local means (skimage), h = 0.8 * estimated sigma
    tv          total variation, Chambolle (skimage), weight = estimated sigma
    wavelet     BayesShrink soft thresholding in YCbCr (skimage; needs PyWavelets)
    bm3d        BM3D on RGB (the optional `bm3d` package)
    biharmonic  biharmonic inpainting of the hole (skimage)

The denoisers are blind: they estimate the noise level from the corrupted image, as DIP
does not know it either. The summary uses dip's names so both
compare in one table: final_psnr = best_psnr (there is one result), best_step = 0. The output
is also the artifact `restored`; with no clean reference (`reference: none`) there is no psnr.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from priorlab import vocab
from priorlab.tasks.sink import Sink
from priorlab.tasks.dip.degrade import prepare
from priorlab.tasks.dip.metrics import psnr, ssim
from priorlab.tasks.dip.params import BaselineParams, missing_package



def _hwc(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).double().numpy()  # (1, 3, H, W) -> (H, W, 3)


def _sigma(img: np.ndarray) -> float:
    """Donoho's noise estimate: median |finest diagonal Haar detail| / 0.6745, channel mean.

    (skimage's estimate_sigma does the same with db2 but needs PyWavelets.)
    """
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    a = img[:h, :w]
    hh = (a[0::2, 0::2] - a[0::2, 1::2] - a[1::2, 0::2] + a[1::2, 1::2]) / 2  # (H/2, W/2, 3)
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1)) / 0.6745))


def restore(method: str, img: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(H, W, 3) float64 -> (H, W, 3); `mask` (H, W) is True on known pixels."""
    from skimage import restoration as r

    if method == "nlm":
        s = _sigma(img)
        return r.denoise_nl_means(img, patch_size=5, patch_distance=6, h=0.8 * s, sigma=s, fast_mode=True, channel_axis=-1)
    if method == "tv":
        return r.denoise_tv_chambolle(img, weight=_sigma(img), channel_axis=-1)
    if method == "wavelet":
        return r.denoise_wavelet(img, channel_axis=-1, convert2ycbcr=True, method="BayesShrink", mode="soft", rescale_sigma=True)
    if method == "bm3d":
        try:
            from bm3d import bm3d_rgb
        except ImportError:
            raise RuntimeError(missing_package(method)) from None
        return bm3d_rgb(img, sigma_psd=_sigma(img))
    if method == "biharmonic":
        return r.inpaint_biharmonic(img, ~mask, channel_axis=-1)
    raise ValueError(f"method: {method!r} is not one of nlm, tv, wavelet, bm3d, biharmonic")


def run_baseline(params: BaselineParams, sink: Sink) -> dict:
    t_start = time.perf_counter()
    p = params
    clean, corrupted, mask = prepare(p, sink)  # (1, 3, H, W) each; mask (1, 1, H, W) or None

    known = None if mask is None else mask[0, 0].numpy() > 0.5
    restored = restore(p.method, _hwc(corrupted), known)
    out = torch.from_numpy(np.ascontiguousarray(restored, dtype=np.float32)).permute(2, 0, 1)[None].clamp(0, 1)
    sink.artifact(0, vocab.OUTPUT, out)
    sink.artifact(0, vocab.RESTORED, out)  # the run's answer, named as a DIP run's (identical bytes are stored once)

    values = {"psnr_target": psnr(out, corrupted, mask).item()}
    summary = {"status": vocab.DONE, vocab.REFERENCE: "image" if clean is not None else vocab.NO_REFERENCE}
    if clean is not None:
        values.update(psnr=psnr(out, clean).item(), ssim=ssim(out, clean).item())
        summary.update(
            input_psnr=psnr(corrupted, clean).item(),
            input_ssim=ssim(corrupted, clean).item(),
            final_psnr=values["psnr"],
            final_ssim=values["ssim"],
            best_psnr=values["psnr"],
            best_step=0,
            ssim_at_best=values["ssim"],
        )
    if mask is not None and clean is not None:
        values["psnr_hole"] = psnr(out, clean, 1 - mask).item()
        values["psnr_known"] = psnr(out, clean, mask).item()
        summary.update(
            input_psnr_hole=psnr(corrupted, clean, 1 - mask).item(),
            final_psnr_hole=values["psnr_hole"],
            best_psnr_hole=values["psnr_hole"],
            final_psnr_known=values["psnr_known"],
        )
    sink.metrics(0, values)
    summary["wall_s"] = time.perf_counter() - t_start
    return summary
