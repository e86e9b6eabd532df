"""Your own images (issue 14): a corrupted file with or without its clean reference, a user
mask, native non-square sizes, the estimated noise level and blind stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from priorlab.tasks.dip import BaselineParams, DipParams, run, run_baseline
from priorlab.tasks.dip.degrade import STREAM_CORRUPT, add_noise, seeded
from priorlab.tasks.dip.detectors import Context, ResidualWhiteness
from priorlab.tasks.dip.noise_level import _donoho, estimate
from priorlab.tasks.images import expand_pairs, load_image, png_bytes, to_tensor
from priorlab.tasks.sink import MemorySink

FAST = dict(arch="skip", depth=2, width=8, input_depth=8, iterations=30, log_every=10, device="cpu")


def _write(path, image: torch.Tensor) -> str:
    path.write_bytes(png_bytes(image))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 37 x 50 (H x W) clean crop of coffee, its noisy copy and a mask with a hole."""
    d = tmp_path_factory.mktemp("own")
    clean = load_image("coffee", 64)[..., 5:42, 7:57]  # (1, 3, 37, 50): sides no power of two divides
    noisy = add_noise(clean, 0.1, seeded(0, STREAM_CORRUPT))
    mask = torch.ones(1, 3, 37, 50)
    mask[..., 10:20, 15:30] = 0
    return {"clean": _write(d / "clean.png", clean), "noisy": _write(d / "noisy.png", noisy),
            "mask": _write(d / "mask.png", mask), "other": _write(d / "other.png", clean[..., :30, :30]),
            "text": str((d / "notes.png").write_text("not an image") and d / "notes.png"), "dir": d}


def _file(path) -> torch.Tensor:
    return to_tensor(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255)


def test_a_corrupted_file_without_reference_has_no_oracle_and_restores_at_its_blind_stop(files):
    p = DipParams(corrupted=files["noisy"], **FAST)
    assert p.image is None and p.size == "native" and p.sigma == "auto" and p.stop == "rw"
    sink = MemorySink()
    s = run(p, sink)
    assert s["reference"] == "none" and s["sigma_est"] > 0
    assert not {"best_psnr", "final_psnr", "input_psnr", "stop_gap_rw", "stop_psnr_dp"} & set(s), s
    assert not {"psnr", "ssim", "psnr_ema"} & {name for _, name, _ in sink.rows}
    step = s["stop_step_rw"]
    restored = sink.images[(step, "restored")]
    assert restored.shape == (3, 37, 50), "the answer has the photo's own size"
    assert torch.equal(sink.images[(0, "corrupted")], _file(files["noisy"])[0]), "the file is fitted as it is"


def test_a_reference_scores_the_fit_of_the_corrupted_file(files):
    s = run(DipParams(corrupted=files["noisy"], image=files["clean"], sigma=0.1, **FAST), MemorySink())
    assert s["reference"] == "image" and s["input_psnr"] == pytest.approx(20, abs=1.5) and s["best_psnr"] > 10
    assert s["stopped_by"] is None and s["iterations_done"] == 30, "with a reference, no stop unless asked"
    assert abs(s["sigma_est"] - 0.1) < 0.03


def test_a_stopped_run_reports_no_gap_instead_of_a_flattering_zero():
    """Before: a run `stop: dp` ended had stop_gap_dp = 0 (its oracle covered only the steps it ran)."""
    s = run(DipParams(image="coffee", size=32, sigma=0.5, stop="dp", **{**FAST, "iterations": 200}), MemorySink())
    assert s["stopped_by"] == "dp" and s["iterations_done"] < 200
    assert s["stop_gap_dp"] is None and s["stop_gap_wmv"] is None and s["stop_psnr_dp"] is not None


def test_native_size_keeps_a_non_square_image_and_pads_only_the_network(files):
    sink = MemorySink()
    s = run(DipParams(image=files["clean"], size="native", **{**FAST, "depth": 3}), sink)
    assert s["status"] == "done"
    assert {tuple(v.shape) for (_, name), v in sink.images.items()} == {(3, 37, 50)}


def test_integer_size_crops_a_corrupted_file_without_resampling(files):
    sink = MemorySink()
    run(DipParams(corrupted=files["noisy"], size=32, **FAST), sink)
    expect = _file(files["noisy"])[0, :, 2:34, 9:41]  # centre 32 x 32 of 37 x 50
    assert torch.equal(sink.images[(0, "corrupted")], expect)


def test_a_user_mask_is_the_hole_and_the_loss_skips_it(files):
    sink = MemorySink()
    s = run(DipParams(task="inpaint", image=files["clean"], size="native", mask=files["mask"], **FAST), sink)
    mask = sink.images[(0, "mask")]
    assert mask.shape == (3, 37, 50) and mask[:, 10:20, 15:30].sum() == 0 and mask.sum() == 3 * (37 * 50 - 150)
    assert s["final_psnr_hole"] is not None
    corrupted = sink.images[(0, "corrupted")]
    assert corrupted[:, 10:20, 15:30].abs().sum() == 0, "the hole is blanked like the square one"


def test_a_baseline_takes_the_corrupted_file_too(files):
    sink = MemorySink()
    s = run_baseline(BaselineParams(corrupted=files["noisy"], method="tv"), sink)
    assert s["reference"] == "none" and "best_psnr" not in s
    assert sink.images[(0, "restored")].shape == (3, 37, 50)


@pytest.mark.parametrize("kwargs, field, words", [
    (dict(corrupted="{noisy}", image="{other}"), "corrupted", "must have the corrupted image's size"),
    (dict(task="inpaint", image="{clean}", size="native", mask="{other}"), "mask", "but the image it masks is"),
    (dict(mask="{mask}"), "mask", "for task inpaint"),
    (dict(task="inpaint", corrupted="{noisy}"), "mask", "needs mask"),
    (dict(corrupted="{text}"), "corrupted", "not an image that decodes"),
    (dict(sigma="auto"), "sigma", "give corrupted"),
    (dict(sigma=25), "sigma", "0-255 scale"),
    (dict(size="natve"), "size", "nor 'native'"),
    (dict(corrupted="{noisy}", size=64), "size", "never resized"),
    (dict(corrupted="{noisy}", sigma=0), "detectors", "dp needs the noise level"),
])
def test_bad_own_inputs_are_one_error_naming_the_field(files, kwargs, field, words):
    kwargs = {k: v.format(**files) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ValidationError) as e:
        DipParams(**kwargs)
    errors = e.value.errors()
    assert len(errors) == 1 and errors[0]["loc"] == (field,) and words in errors[0]["msg"], errors


def test_params_without_own_files_dump_as_before():
    """Runs that name no corrupted file or mask keep their run ids: the new fields are left out."""
    dumped = DipParams(size=64, depth=2).model_dump(mode="json")
    assert "corrupted" not in dumped and "mask" not in dumped
    assert DipParams(**dumped).model_dump(mode="json") == dumped


def test_stop_none_runs_every_step_without_reference_and_is_the_default_with_one(files):
    assert DipParams(corrupted=files["noisy"], stop="none", **FAST).stop == "none"
    assert DipParams(stop="none").stop is None, "with a reference 'none' is the default: one run id"


def test_folders_of_pairs_pair_by_name_and_refuse_what_does_not_pair(tmp_path):
    for sub, names in (("clean", ["a.png", "b.jpg"]), ("noisy", ["a.png", "b.png"])):
        (tmp_path / sub).mkdir()
        for n in names:
            Image.new("RGB", (8, 8)).save(tmp_path / sub / n)
    pairs = expand_pairs(str(tmp_path))
    assert [(c.split("/")[-1], r.split("/")[-1]) for c, r in pairs] == [("a.png", "a.png"), ("b.png", "b.jpg")]
    Image.new("RGB", (8, 8)).save(tmp_path / "noisy" / "c.png")
    with pytest.raises(ValueError, match="c.png' has no partner of the same name in clean/"):
        expand_pairs(str(tmp_path))
    Image.new("RGB", (8, 8)).save(tmp_path / "clean" / "c.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "clean" / "c.tif")
    with pytest.raises(ValueError, match="share the name 'c'"):
        expand_pairs(str(tmp_path))


def test_the_noise_estimate_is_scikit_images_and_close_for_gaussian_noise():
    from skimage.restoration import estimate_sigma

    rng = np.random.default_rng(0)
    a = np.clip(0.5 + 0.1 * rng.standard_normal((40, 50, 3)), 0, 1)
    assert _donoho(a, a) == pytest.approx(estimate_sigma(a, channel_axis=-1, average_sigmas=True))
    clean = load_image("astronaut", 128)
    for sigma in (0.05, 0.1):
        y = add_noise(clean, sigma, seeded(0, STREAM_CORRUPT))
        assert estimate(y, "gaussian") == pytest.approx(sigma, rel=0.15)
    assert estimate(add_noise(clean, 0.1, seeded(0, STREAM_CORRUPT), "impulse"), "impulse") == pytest.approx(0.1, rel=0.1)


def test_strong_noise_clipped_at_0_and_1_is_not_under_estimated():
    from priorlab.tasks.dip.noise_level import clip_scale

    rng = np.random.default_rng(0)
    for level in (0.02, 0.3, 0.9):  # the censored-normal std against a draw
        draw = np.clip(level + 0.25 * rng.standard_normal(200_000), 0, 1).std() / 0.25
        assert clip_scale(np.array(level), 0.25) == pytest.approx(draw, rel=0.01)
    # astronaut has dark and bright areas: plain wavelet MAD reads 0.25 as ~0.21 there (-15.5%).
    for name in ("astronaut", "camera"):
        y = (add_noise(load_image(name, 64), 0.25, seeded(0, STREAM_CORRUPT)) * 255).round() / 255
        assert estimate(y, "gaussian") == pytest.approx(0.25, rel=0.15)


def test_residual_whiteness_tells_structure_from_noise():
    clean = load_image("camera", 64)
    y = add_noise(clean, 0.1, seeded(0, STREAM_CORRUPT))
    rw = ResidualWhiteness(Context(corrupted=y, mask=None, noise="gaussian", sigma=0.0, seed=0, iterations=1,
                                   log_every=1))
    flat = clean.mean().expand_as(clean)
    assert rw.statistic(1, flat).item() > 0.3, "a residual that still holds the image is correlated"
    assert abs(rw.statistic(1, clean).item()) < 0.1, "the noise alone is white"
    assert rw.statistic(1, y * 0.5 + clean * 0.5).item() < 0.1
