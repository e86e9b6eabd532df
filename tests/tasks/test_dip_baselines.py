"""Classical baselines: same degradation as DIP, same summary names, each one restores."""

import importlib.util

import pytest
import torch

from priorlab.tasks.dip import BaselineParams, DipParams, run, run_baseline
from priorlab.tasks.dip.baselines import restore
from priorlab.tasks.sink import MemorySink

HAS_PYWT = importlib.util.find_spec("pywt") is not None
HAS_BM3D = importlib.util.find_spec("bm3d") is not None


def methods():
    yield "nlm"
    yield "tv"
    yield pytest.param("wavelet", marks=pytest.mark.skipif(not HAS_PYWT, reason="PyWavelets not installed"))
    yield pytest.param("bm3d", marks=pytest.mark.skipif(not HAS_BM3D, reason="bm3d not installed"))


@pytest.mark.parametrize("sigma", [0.1, 0.3])
@pytest.mark.parametrize("method", list(methods()))
def test_each_denoiser_beats_the_noisy_input(method, sigma):
    sink = MemorySink()
    s = run_baseline(BaselineParams(method=method, size=64, sigma=sigma), sink)
    assert s["status"] == "done"
    assert s["best_psnr"] == s["final_psnr"] > s["input_psnr"] + 1
    assert s["ssim_at_best"] == s["final_ssim"]
    assert sorted(sink.images) == [(0, "clean"), (0, "corrupted"), (0, "output"), (0, "restored")]
    assert sink.last("psnr") == s["final_psnr"]


def test_biharmonic_fills_the_hole():
    sink = MemorySink()
    s = run_baseline(BaselineParams(task="inpaint", method="biharmonic", size=64, region=16, region_place="random"), sink)
    assert s["best_psnr_hole"] > s["input_psnr_hole"] + 3
    assert s["final_psnr"] > s["input_psnr"]
    assert (0, "mask") in sink.images


def test_baseline_sees_the_same_corruption_as_dip():
    kw = dict(task="inpaint", size=64, sigma=0.1, region=16, region_place="random", seed=4)
    a, b = MemorySink(), MemorySink()
    run_baseline(BaselineParams(method="biharmonic", **kw), a)
    run(DipParams(width=4, depth=1, iterations=1, **kw), b)
    for name in ("clean", "corrupted", "mask"):
        assert torch.equal(a.images[(0, name)], b.images[(0, name)])


@pytest.mark.skipif(HAS_BM3D, reason="bm3d is installed")
def test_bm3d_absent_is_a_clear_message_at_run_time_too():
    with pytest.raises(RuntimeError, match=r"optional package 'bm3d'.*pip install"):
        restore("bm3d", torch.rand(16, 16, 3).double().numpy(), None)
