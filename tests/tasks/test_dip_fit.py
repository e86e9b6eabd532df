"""The fit loop on a 64-pixel astronaut crop: it restores, it is reproducible, it reports."""

import json

import pytest
import torch

from priorlab.tasks.dip import DipParams, run
from priorlab.tasks.dip import losses
from priorlab.tasks.sink import MemorySink

SMALL = dict(image="astronaut", size=64, width=16, log_every=10)



def fit(**kw):
    sink = MemorySink()
    summary = run(DipParams(**{**SMALL, **kw}), sink)
    return summary, sink


def test_denoising_beats_the_noisy_input():
    s, sink = fit(arch="seed-double", sigma=0.2, iterations=100)
    assert s["status"] == "done"
    assert s["best_psnr"] > s["input_psnr"] + 1.5
    assert s["final_ssim"] > s["input_ssim"]
    assert {k for _, k, _ in sink.rows} == {"loss", "psnr", "ssim", "psnr_target", "psnr_ema", "det_wmv", "det_dp",
                                              "det_rw"}
    assert sink.series("psnr")[-1] == (100, s["final_psnr"])


def test_inpainting_with_the_masked_loss_fills_the_hole():
    s, sink = fit(task="inpaint", region=16, arch="seed-double", width=8, iterations=100)
    assert s["best_psnr_hole"] > s["input_psnr_hole"] + 2
    assert s["final_psnr_hole"] == sink.last("psnr_hole")
    assert {"psnr_hole", "psnr_known"} <= {k for _, k, _ in sink.rows}
    mask = sink.images[(0, "mask")]
    assert mask.shape == (3, 64, 64) and mask.sum() == 3 * (64 * 64 - 16 * 16)


def test_the_reports_unmasked_loss_learns_the_black_hole():
    masked, _ = fit(task="inpaint", region=16, width=8, iterations=60, seed=1)
    unmasked, _ = fit(task="inpaint", region=16, width=8, iterations=60, seed=1, masked_loss=False)
    assert unmasked["final_psnr_hole"] < masked["final_psnr_hole"]


def test_same_params_same_numbers():
    kw = dict(task="inpaint", region=16, region_place="random", sigma=0.1, reg_noise_std=0.03, width=8, iterations=40, arch="skip")
    (s1, a), (s2, b) = fit(**kw), fit(**kw)
    assert a.rows == b.rows
    for k in s1:
        if k not in ("wall_s", "iters_per_s"):
            assert s1[k] == s2[k], k
    for key in a.images:
        assert torch.equal(a.images[key], b.images[key])
    s3, _ = fit(**{**kw, "seed": 1})
    assert s3["final_psnr"] != s1["final_psnr"]


def test_summary_and_artifacts():
    s, sink = fit(iterations=20, snapshots=[5, 20], loss="l1", arch="seed-single")
    keys = {"status", "final_psnr", "best_psnr", "best_step", "ssim_at_best", "input_psnr", "wall_s",
            "iters_per_s", "final_ssim", "best_psnr_ema", "input_ssim", "final_loss", "iterations_done"}
    assert keys <= set(s)
    json.dumps(s, allow_nan=False)  # flat and JSON-serialisable
    assert sorted(sink.images) == [(0, "clean"), (0, "corrupted"), (5, "output"), (20, "output"), (20, "restored")]
    assert torch.equal(sink.images[(20, "restored")], sink.images[(20, "output")]), "no stop rule: the last output"
    out = sink.images[(20, "output")]
    assert out.shape == (3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert [st for st, _ in sink.series("psnr")] == [5, 10, 20]  # log_every, snapshots, last


@pytest.mark.parametrize("loss", ["l2", "kl"])
def test_losses_run(loss):
    s, _ = fit(iterations=10, width=8, loss=loss, depth=1)
    assert s["status"] == "done" and s["final_loss"] >= 0


def test_nan_loss_ends_the_run_as_diverged(monkeypatch):
    calls = []

    def bad(output, target):
        calls.append(1)
        return losses.l2(output, target) * (float("nan") if len(calls) > 12 else 1.0)

    monkeypatch.setitem(losses.LOSSES, "l2", bad)
    s, sink = fit(iterations=100, width=8)
    assert s["status"] == "diverged" and s["diverged_at"] == 20
    assert s["best_step"] == 10 and s["final_psnr"] == sink.last("psnr")
    assert len(calls) == 20 and max(st for st, _, _ in sink.rows) == 10
    json.dumps(s, allow_nan=False)


def test_diverged_before_any_log_returns_nones(monkeypatch):
    monkeypatch.setitem(losses.LOSSES, "l2", lambda o, t: (o - t).sum() * float("inf"))
    s, sink = fit(iterations=30, width=8)
    assert s["status"] == "diverged" and s["best_psnr"] is None and sink.rows == []


def test_gpu_only_switches_are_ignored_on_cpu():
    kw = dict(iterations=10, width=8, depth=1, device="cpu")
    (a, _), (b, _) = fit(**kw), fit(**kw, amp=True, channels_last=True)
    assert a["device"] == b["device"] == "cpu" and a["final_psnr"] == b["final_psnr"]
