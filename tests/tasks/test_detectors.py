"""Early-stopping detectors: they watch a run without changing it, score honestly against the
logged psnr, and `stop` ends the run where its detector decides."""

import json

import pytest
import torch
from pydantic import ValidationError

from priorlab.cluster.cli import build_parser, main, params_from_args
from priorlab.tasks.dip import DipParams, run
from priorlab.tasks.dip import detectors as det
from priorlab.tasks.dip.params import DipParams as Params
from priorlab.tasks.sink import MemorySink

SMALL = dict(image="astronaut", size=32, depth=2, width=8, log_every=10, sigma=0.2)
CORE = ("wall_s", "iters_per_s")


def fit(**kw):
    sink = MemorySink()
    return run(DipParams(**{**SMALL, **kw}), sink), sink


@pytest.fixture
def small_window(monkeypatch):
    """WMV sized for short test runs (its own window is 10 steps, its patience 100)."""
    monkeypatch.setattr(det.WMV, "WINDOW", 5)
    monkeypatch.setattr(det.WMV, "PATIENCE", 30)


def test_detectors_do_not_change_the_fit(small_window):
    kw = dict(arch="skip", iterations=30, reg_noise_std=0.03, noise="poisson")
    with_all, a = fit(**kw)
    without, b = fit(**kw, detectors="none")
    assert [r for r in a.rows if not r[1].startswith("det_")] == b.rows
    assert {k for _, k, _ in a.rows} >= {"det_wmv", "det_dp"}
    assert not any(k.startswith("stop_") for k in without) and without["stopped_by"] is None
    for k, v in without.items():
        if k not in CORE:
            assert with_all[k] == v, k
    assert sorted(a.images) == sorted(b.images)


def test_stop_points_are_scored_by_the_logged_psnr(small_window):
    s, sink = fit(arch="seed-double", iterations=100)
    psnr, ssim = dict(sink.series("psnr")), dict(sink.series("ssim"))
    for d in det.DETECTORS:
        step = s[f"stop_step_{d}"]
        assert step in psnr, d  # a logging step
        assert s[f"stop_psnr_{d}"] == psnr[step] and s[f"stop_ssim_{d}"] == ssim[step]
        assert s[f"stop_gap_{d}"] == pytest.approx(s["best_psnr"] - psnr[step]) and s[f"stop_gap_{d}"] >= 0
    json.dumps(s, allow_nan=False)


def test_stop_ends_the_run_where_its_detector_decides():
    full, _ = fit(iterations=150, arch="skip")
    s, sink = fit(iterations=150, arch="skip", stop="dp")
    assert full["stopped_by"] is None and full["iterations_done"] == 150
    assert s["stopped_by"] == "dp" and s["iterations_done"] == s["stop_step_dp"] < 150, s
    assert s["stop_decided_dp"] == s["stop_step_dp"] == full["stop_decided_dp"]
    assert max(st for st, _, _ in sink.rows) == s["iterations_done"]
    # up to the stop, the same numbers as the full run
    assert s["stop_psnr_dp"] == full["stop_psnr_dp"] and s["stop_step_dp"] == full["stop_step_dp"]


def test_wmv_stops_patience_steps_after_its_minimum(small_window):
    s, sink = fit(iterations=400, stop="wmv", detectors=["wmv"])
    assert s["stopped_by"] == "wmv" and s["iterations_done"] < 400
    assert s["iterations_done"] == s["stop_decided_wmv"] >= s["stop_step_wmv"] + det.WMV.PATIENCE
    var = dict(sink.series("det_wmv"))
    assert min(var, key=var.get) == s["stop_step_wmv"]
    assert "stop_step_dp" not in s
    # Without stop the run goes on, and the decision made then stands.
    full, _ = fit(iterations=400, detectors=["wmv"])
    assert full["stopped_by"] is None and full["iterations_done"] == 400
    assert (full["stop_step_wmv"], full["stop_decided_wmv"]) == (s["stop_step_wmv"], s["stop_decided_wmv"])


def test_wmv_statistic_is_the_variance_of_the_last_outputs():
    ctx = det.Context(corrupted=torch.zeros(1, 3, 4, 4), mask=None, noise="gaussian", sigma=0.1, seed=0,
                      iterations=100, log_every=1)
    w = det.WMV(ctx)
    g = torch.Generator().manual_seed(0)
    outs = [torch.rand(1, 3, 4, 4, generator=g) + 5 + 0.01 * t for t in range(250)]  # drifting, offset
    for t, x in enumerate(outs, 1):
        w.observe(t, x)
        stat = w.statistic(t, x)
        if t < det.WMV.WINDOW:
            assert stat is None
        else:
            window = torch.stack(outs[t - det.WMV.WINDOW : t]).reshape(det.WMV.WINDOW, -1)  # (W, 48)
            want = (window - window.mean(0)).square().sum(1).mean() / 48
            assert stat.item() == pytest.approx(want.item(), rel=1e-3)


def test_discrepancy_statistic_is_about_one_for_the_clean_image():
    """The clean image is as far from the target as the noise model says (for every type)."""
    from priorlab.tasks.dip.degrade import corrupt
    from priorlab.tasks.images import load_image

    clean = load_image("astronaut", 64)
    for noise, sigma in (("gaussian", 0.1), ("poisson", 0.2), ("impulse", 0.2), ("speckle", 0.3)):
        corrupted, _ = corrupt(clean, "denoise", sigma, None, None, seed=3, noise=noise)
        ctx = det.Context(corrupted=corrupted, mask=None, noise=noise, sigma=sigma, seed=0, iterations=1, log_every=1)
        ratio = det.Discrepancy(ctx).statistic(1, clean).item()
        assert 0.9 < ratio < 1.1, (noise, ratio)


def test_detector_params_normalise_and_validate():
    assert Params().detectors == list(det.DETECTORS)
    assert Params(detectors="none").detectors == [] and Params(detectors=[]).detectors == []
    assert Params(detectors=["dp", "wmv", "dp"]).detectors == ["wmv", "dp"]
    assert Params(detectors="none", stop="wmv").detectors == ["wmv"]  # the stopping detector is attached
    with pytest.raises(ValidationError) as e:
        Params(detectors=["wmv", "wvm"])
    msg = str(e.value)
    assert "unknown detector 'wvm'" in msg and "wmv, dp" in msg and "did you mean 'wmv'" in msg
    with pytest.raises(ValidationError) as e:
        Params(stop="oracle")
    assert "stop" in str(e.value) and "allowed: wmv, dp" in str(e.value)


def test_detector_flags_parse_lists_and_none(capsys):
    parser = build_parser()
    args = parser.parse_args(["dip", "--detectors", "wmv,dp", "--stop", "dp"])
    assert params_from_args(Params, args).detectors == ["wmv", "dp"]
    assert params_from_args(Params, parser.parse_args(["dip", "--detectors", "none"])).detectors == []
    assert main(["dip", "--detectors", "wmx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("priorlab dip: --detectors")
    assert "allowed: wmv, dp" in err[0] and "did you mean 'wmv'" in err[0]
