"""StyleGAN jobs on a `random` generator with built-in classifiers, through a MemorySink."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from priorlab.tasks.sink import MemorySink
from priorlab.tasks.stylegan import TASK_KINDS
from priorlab.tasks.stylegan.jobs import direction, interpolate, sample, traverse

GEN = "random:16"
CLF = {"source": "builtin:brightness", "positive": "bright", "negative": "dark"}



def _flat_json(summary: dict) -> None:
    for k, v in summary.items():
        assert isinstance(k, str) and (v is None or isinstance(v, (int, float, str))), (k, v)


@pytest.fixture(scope="module")
def direction_run():
    p = direction.DirectionParams(generator=GEN, n_samples=384, classifier=CLF, calibration_samples=64)
    sink = MemorySink()
    return p, sink, direction.run(p, sink)


def test_task_kinds_are_listed():
    names = [k for k, _, _ in TASK_KINDS]
    assert names == ["stylegan-sample", "stylegan-interpolate", "stylegan-direction", "stylegan-traverse"]
    for _, model, run in TASK_KINDS:
        assert model.model_config["extra"] == "forbid" and callable(run)


def test_direction_svm_separates_in_w(direction_run):
    p, sink, summary = direction_run
    _flat_json(summary)
    assert summary["w_val_accuracy"] >= 0.85  # chance is 0.5
    assert summary["z_val_accuracy"] > 0.6
    assert summary["n_kept"] == 2 * round(0.2 * 384)
    normal_w = [v for _, v in sink.series("normal/w")]
    assert len(normal_w) == 64 and abs(np.linalg.norm(normal_w) - 1) < 1e-4
    assert (0, "extremes") in sink.images


def test_direction_shards_give_the_same_normal(direction_run):
    p, sink, summary = direction_run
    shards = [direction.score_shard(p, s, 3) for s in range(3)]
    fit, normals = direction.fit_direction(p, shards)
    assert fit["w_val_accuracy"] == summary["w_val_accuracy"]
    assert np.allclose(normals["w"], [v for _, v in sink.series("normal/w")], atol=1e-6)
    sharded = MemorySink()
    assert direction.finish(p, shards, sharded) == summary
    assert sharded.series("normal/z") == sink.series("normal/z")
    with pytest.raises(ValueError, match="a shard is missing"):
        direction.fit_direction(p, shards[:2])


def test_traverse_raises_probability_monotonically_and_measures_identity():
    params = traverse.TraverseParams(generator=GEN, classifier=CLF, calibration_samples=64, n_latents=3, steps=5,
                                     alpha_max=2.0, direction={"n_samples": 384})
    sink = MemorySink()
    summary = traverse.run(params, sink)
    _flat_json(summary)
    assert summary["normals_source"] == "recomputed"
    assert summary["w_prob_delta"] > 0.3 and summary["w_mean_prob_monotone"] == 1
    mean_w = [v for _, v in sink.series("prob/w/mean")]
    assert len(mean_w) == 5 and all(b >= a - 1e-4 for a, b in zip(mean_w, mean_w[1:]))
    assert summary["z_prob_delta"] > 0
    # identity vs alpha = 0: perfect in the middle frame, lower at the ends
    ssim = dict(sink.series("ssim/w/latent0"))
    assert ssim[2] == pytest.approx(1.0, abs=1e-5) and ssim[0] < 1.0
    assert dict(sink.series("pixel_dist/z/mean"))[2] == pytest.approx(0.0, abs=1e-6)
    for key in ("w_ssim_at_max", "z_ssim_at_max", "w_ssim_loss_per_dprob", "z_pixel_dist_per_dprob"):
        assert summary[key] is not None
    assert (0, "grid/w") in sink.images and (0, "strip/z/latent2") in sink.images
    grid = sink.images[(0, "grid/w")]
    assert grid.shape == (3, 2 + 3 * 18, 2 + 5 * 18)


def test_traverse_from_saved_normals_file(direction_run, tmp_path):
    p, sink, _ = direction_run
    normals = {"w": np.array([v for _, v in sink.series("normal/w")], dtype=np.float32)}
    path = direction.save_normals(tmp_path / "normals.npz", normals, p)
    params = traverse.TraverseParams(generator=GEN, classifier=CLF, calibration_samples=64, n_latents=2, steps=3,
                                     spaces=["w"], normals_file=str(path))
    summary = traverse.run(params, MemorySink())
    assert summary["normals_source"] == "file" and summary["w_prob_delta"] > 0.3
    bad = traverse.TraverseParams(generator=GEN, n_latents=1, steps=3, spaces=["z"], normals_file=str(path))
    with pytest.raises(ValueError, match="no normal for"):
        traverse.run(bad, MemorySink())


def test_traverse_identity_embedding_model(tmp_path):
    class Embed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)

    path = tmp_path / "embed.pt"
    torch.jit.script(Embed()).save(str(path))
    normals = tmp_path / "n.npz"
    np.savez(normals, z=np.eye(64, dtype=np.float32)[0])
    params = traverse.TraverseParams(generator=GEN, n_latents=2, steps=3, spaces=["z"], normals_file=str(normals),
                                     identity_model=str(path), calibration_samples=16)
    sink = MemorySink()
    summary = traverse.run(params, sink)
    assert "z_embed_dist_at_max" in summary
    assert dict(sink.series("embed_dist/z/latent0"))[1] == pytest.approx(0.0, abs=1e-5)


def test_interpolate_records_flip_steps():
    params = interpolate.InterpolateParams(generator=GEN, classifier=CLF, calibration_samples=64, pairs=2, steps=6,
                                           pool=32)
    sink = MemorySink()
    summary = interpolate.run(params, sink)
    _flat_json(summary)
    assert summary["opposite_pairs"] == 2
    for space in ("z_lerp", "z_slerp", "w_lerp"):
        # negative start, positive end: every path flips somewhere after frame 0
        assert summary[f"{space}_flip_rate"] == 1.0
        for i in range(2):
            f = summary[f"{space}_flip_step_pair{i}"]
            labels = [v for _, v in sink.series(f"label/{space}/pair{i}")]
            assert len(labels) == 6 and labels[0] == 0 and labels[-1] == 1
            assert labels[f] == 1 and all(v == 0 for v in labels[:f])
        assert 0 < summary[f"{space}_flip_frac_mean"] <= 1
        assert sink.images[(0, f"strip/{space}/pair0")].shape == (3, 20, 2 + 6 * 18)
    assert len(sink.series("prob/w_lerp/pair1")) == 6 and len(sink.series("t")) == 6
    assert "z_slerp_flips_before_w_lerp_frac" in summary


def test_sample_rows_of_z_and_w():
    sink = MemorySink()
    summary = sample.run(sample.SampleParams(generator=GEN, n=4, truncation_psi=0.7, classifier=CLF,
                                             calibration_samples=16), sink)
    _flat_json(summary)
    assert sink.images[(0, "grid")].shape == (3, 2 + 2 * 18, 2 + 4 * 18)
    assert sink.images[(0, "samples/z")].shape == (3, 20, 2 + 4 * 18)
    assert summary["z_diversity"] > 0 and 0 <= summary["w_prob_mean"] <= 1
    g = sample.run(sample.SampleParams(generator=GEN, n=2, w_source="gaussian"), MemorySink())
    assert g["w_source"] == "gaussian"


def test_same_params_same_numbers():
    p = interpolate.InterpolateParams(generator=GEN, calibration_samples=16, pairs=1, steps=3, pool=8,
                                      spaces=["w_lerp"])
    a, b = MemorySink(), MemorySink()
    interpolate.run(p, a)
    interpolate.run(p, b)
    assert a.rows == b.rows


@pytest.mark.parametrize("model, kwargs, match", [
    (sample.SampleParams, {"n_images": 3}, "n_images"),
    (sample.SampleParams, {"generator": "random:24"}, "resolution 24"),
    (sample.SampleParams, {"generator": "model.onnx"}, "allowed: random:RES"),
    (sample.SampleParams, {"noise_mode": "fixed"}, "const"),
    (sample.SampleParams, {"device": "gpu"}, "allowed: auto, cpu"),
    (traverse.TraverseParams, {"steps": 6}, "must be odd"),
    (interpolate.InterpolateParams, {"spaces": ["w_slerp"]}, "z_lerp"),
    (direction.DirectionParams, {"classifier": {"source": "builtin:age"}}, "allowed: brightness"),
    (direction.DirectionParams, {"keep_fraction": 0.7}, "keep_fraction"),
])
def test_params_errors_name_field_value_and_allowed(model, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        model(**kwargs)
