"""Noise types: each corrupts with the statistics its strength promises, Gaussian as before,
and DIP and the baselines see the same corrupted image."""

import pytest
import torch
from pydantic import ValidationError

from priorlab.tasks.dip import DipParams, run
from priorlab.tasks.dip.baselines import run_baseline
from priorlab.tasks.dip.degrade import NOISES, add_noise, seeded
from priorlab.tasks.dip.params import BaselineParams
from priorlab.tasks.sink import MemorySink

GRAY = torch.full((1, 3, 128, 128), 0.5)  # mid-gray: no clipping at these strengths


def noisy(noise, sigma, clean=GRAY):
    return add_noise(clean, sigma, seeded(0, 0), noise)


def test_gaussian_is_the_historic_draw():
    g = seeded(7, 0)
    want = (GRAY + 0.1 * torch.randn(GRAY.shape, generator=g)).clamp(0, 1)
    assert torch.equal(add_noise(GRAY, 0.1, seeded(7, 0), "gaussian"), want)
    assert torch.equal(add_noise(GRAY, 0.1, seeded(7, 0)), want)


def test_poisson_keeps_the_mean_and_has_std_sigma_at_mid_gray():
    y = noisy("poisson", 0.1)
    assert y.mean().item() == pytest.approx(0.5, abs=0.005)
    assert y.std().item() == pytest.approx(0.1, rel=0.05)
    assert len(torch.unique(y)) < 200  # counts over a peak: discrete levels


def test_impulse_replaces_a_sigma_fraction_by_salt_or_pepper():
    y = noisy("impulse", 0.2)
    hit = y != 0.5
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(torch.unique(y[hit]).tolist()) == {0.0, 1.0}
    assert (y == 1).float().mean().item() == pytest.approx(0.1, abs=0.01)


def test_speckle_is_multiplicative():
    ramp = torch.linspace(0.1, 0.8, 128).expand(1, 3, 128, 128)  # dark left, bright right
    y = noisy("speckle", 0.2, clean=ramp)
    resid = y - ramp
    dark, bright = resid[..., :20].std().item(), resid[..., -20:].std().item()
    assert dark == pytest.approx(0.2 * ramp[..., :20].mean().item(), rel=0.15)
    assert bright > 3 * dark
    assert abs(resid.mean().item()) < 0.005


@pytest.mark.parametrize("noise", NOISES)
def test_baselines_see_the_dip_corrupted_image(noise):
    common = dict(image="astronaut", size=32, noise=noise, seed=3)
    dip = MemorySink()
    s = run(DipParams(**common, width=8, depth=2, iterations=5, log_every=5), dip)  # default sigma
    base = MemorySink()
    run_baseline(BaselineParams(**common, method="tv"), base)
    assert torch.equal(dip.images[(0, "corrupted")], base.images[(0, "corrupted")])
    assert s["status"] == "done" and s["input_psnr"] < 40  # the default strength corrupts
    other = MemorySink()
    run_baseline(BaselineParams(**{**common, "seed": 4}, method="tv"), other)
    assert not torch.equal(other.images[(0, "corrupted")], base.images[(0, "corrupted")])


def test_noise_types_differ_and_validate():
    imgs = {n: MemorySink() for n in NOISES}
    for n, sink in imgs.items():
        run_baseline(BaselineParams(image="astronaut", size=32, noise=n, method="tv"), sink)
    corrupted = [imgs[n].images[(0, "corrupted")] for n in NOISES]
    assert all(not torch.equal(a, b) for i, a in enumerate(corrupted) for b in corrupted[i + 1 :])
    with pytest.raises(ValidationError) as e:
        DipParams(noise="pink")
    assert "noise" in str(e.value) and "'gaussian', 'poisson', 'impulse' or 'speckle'" in str(e.value)
