"""PSNR and SSIM agree with scikit-image's; the losses do what their docstrings say."""

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from priorlab.tasks.dip.losses import LOSSES
from priorlab.tasks.dip.metrics import psnr, ssim
from priorlab.tasks.images import load_image


def pairs():
    g = torch.Generator().manual_seed(0)
    clean = load_image("astronaut", 64)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    yield clean, noisy
    yield torch.rand(1, 3, 40, 48, generator=g), torch.rand(1, 3, 40, 48, generator=g)
    yield clean, (clean * 0.8 + 0.1)  # a contrast change: structure kept


def hwc(x):
    return x[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("x,y", list(pairs()))
def test_psnr_matches_skimage(x, y):
    assert psnr(x, y).item() == pytest.approx(peak_signal_noise_ratio(hwc(x), hwc(y), data_range=1), abs=1e-4)


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("x,y", list(pairs()))
def test_ssim_matches_skimage(x, y, gaussian):
    ref = structural_similarity(hwc(x), hwc(y), channel_axis=2, data_range=1, gaussian_weights=gaussian)
    assert ssim(x, y, gaussian=gaussian).item() == pytest.approx(ref, abs=1e-4)


def test_masked_psnr_is_psnr_over_the_masked_pixels():
    x, y = next(pairs())
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:30, 20:50] = 1
    ref = peak_signal_noise_ratio(hwc(x)[10:30, 20:50], hwc(y)[10:30, 20:50], data_range=1)
    assert psnr(x, y, mask).item() == pytest.approx(ref, abs=1e-4)


def test_losses():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 100, generator=g), torch.rand(1, 3, 100, generator=g)
    assert LOSSES["l1"](a, b).item() == pytest.approx((a - b).abs().mean().item())
    assert LOSSES["l2"](a, b).item() == pytest.approx(((a - b) ** 2).mean().item())
    # kl = KL(target || output) of per-channel softmax over pixels, averaged over channels.
    p, q = torch.softmax(b, -1), torch.softmax(a, -1)
    ref = (p * (p / q).log()).sum(-1).mean()
    assert LOSSES["kl"](a, b).item() == pytest.approx(ref.item(), rel=1e-5)
    assert LOSSES["kl"](a, a).item() == pytest.approx(0, abs=1e-7)
    assert LOSSES["kl"](a + 0.5, a).item() == pytest.approx(0, abs=1e-6)  # blind to a shift
