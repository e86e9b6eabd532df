"""Parameters validate at construction: bad fields fail naming field, value and what is allowed."""

import importlib.util

import pytest
from pydantic import ValidationError

from priorlab.tasks.dip.params import BaselineParams, DipParams
from priorlab.tasks.registry import KINDS


def error(model, **kw) -> str:
    with pytest.raises(ValidationError) as e:
        model(**kw)
    return str(e.value)


@pytest.mark.parametrize(
    "kw, field, value, allowed",
    [
        (dict(arch="unet"), "arch", "unet", "'seed-double', 'seed-single' or 'skip'"),
        (dict(size=64, depth=5), "depth", "5", "allowed depths for size 64: [1, 2, 3, 4]"),
        (dict(size=96, depth=6), "depth", "6", "divisible by 2**depth"),
        (dict(task="inpaint", size=64, region=64), "region", "64", "allowed: 1..63"),
        (dict(task="inpaint", size=64, region=80), "region", "80", "smaller than the image size 64"),
        (dict(sigma=-0.1), "sigma", "-0.1", "neither a noise strength in [0, 1] nor 'auto'"),
        (dict(sigma=25), "sigma", "25", "25 on a 0-255 scale is 25/255 = 0.098"),
        (dict(image="/no/such/picture.png"), "image", "/no/such/picture.png", "astronaut"),
        (dict(loss="ssim"), "loss", "ssim", "'l1', 'l2' or 'kl'"),
        (dict(head="tanh"), "head", "tanh", "'report', 'sigmoid' or 'linear'"),
        (dict(iterations=10, snapshots=[0, 5, 11]), "snapshots", "[0, 5, 11]", "1..iterations=10"),
        (dict(device="gpu"), "device", "gpu", "cpu, cuda"),
        (dict(lr=0), "lr", "0", "greater than 0"),
        (dict(depht=3), "depht", "3", "Extra inputs are not permitted"),
    ],
)
def test_bad_dip_params_name_field_value_and_allowed(kw, field, value, allowed):
    msg = error(DipParams, **kw)
    assert f"\n{field}\n" in msg
    assert value in msg
    assert allowed in msg


def test_a_folder_is_not_an_image(tmp_path):
    assert "is a folder" in error(DipParams, image=str(tmp_path))


def test_an_existing_file_is_an_image(tmp_path):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("RGB", (40, 30), "red").save(path)
    assert DipParams(image=str(path), size=32).image == str(path)


def test_inpainting_fields_are_dropped_for_denoise():
    # So a run_id hashed from model_dump() does not depend on irrelevant fields.
    a = DipParams(size=64, region=999, region_place="random", masked_loss=False)
    b = DipParams(size=64)
    assert a.model_dump() == b.model_dump()
    assert (a.region, a.region_place, a.masked_loss) == (None, None, None)


def test_defaults_per_task_and_arch():
    d = DipParams()
    assert (d.sigma, d.head, d.loss, d.lr, d.input_depth, d.iterations) == (0.1, "report", "l2", 0.01, 32, 1000)
    assert d.snapshots == [200, 400, 600, 800, 1000]
    i = DipParams(task="inpaint", arch="skip", depth=5)
    assert (i.sigma, i.region, i.region_place, i.masked_loss, i.head) == (0.0, 32, "centre", True, "sigmoid")
    assert DipParams(iterations=3).snapshots == [1, 2, 3]


def test_dump_round_trips():
    p = DipParams(task="inpaint", size=64, region=16, iterations=50)
    assert DipParams(**p.model_dump()) == p
    b = BaselineParams(task="inpaint", method="biharmonic", size=64)
    assert BaselineParams(**b.model_dump()) == b


@pytest.mark.parametrize(
    "kw, allowed",
    [
        (dict(method="median"), "'nlm', 'tv', 'wavelet', 'bm3d' or 'biharmonic'"),
        (dict(method="biharmonic"), "allowed methods are nlm, tv, wavelet, bm3d"),
        (dict(task="inpaint", method="nlm"), "allowed method is 'biharmonic'"),
        (dict(task="inpaint", method="biharmonic", size=64, region=64), "allowed: 1..63"),
        (dict(masked_loss=True), "Extra inputs are not permitted"),
    ],
)
def test_bad_baseline_params(kw, allowed):
    assert allowed in error(BaselineParams, **kw)


@pytest.mark.skipif(importlib.util.find_spec("bm3d") is not None, reason="bm3d is installed")
def test_bm3d_absent_is_a_clear_message():
    msg = error(BaselineParams, method="bm3d")
    assert "\nmethod\n" in msg and "optional package 'bm3d'" in msg and "pip install" in msg


def test_registry_holds_the_dip_kinds():
    assert KINDS["dip"].params is DipParams and KINDS["dip-baseline"].params is BaselineParams
    assert callable(KINDS["dip"].run) and callable(KINDS["dip-baseline"].run)
