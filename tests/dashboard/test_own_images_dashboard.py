"""Runs with no clean reference are first-class on the dashboard (issue 14): Runs, Compare
(the stop marked on the detector statistic), Grid, and Analysis' Stopping split by whether
sigma was known or estimated."""

from __future__ import annotations

import json

import pytest

from apptest_helpers import assert_ok, open_page
from priorlab.cluster.local import run_local
from priorlab.tasks.dip import DipParams
from priorlab.tasks.dip.degrade import STREAM_CORRUPT, add_noise, seeded
from priorlab.tasks.images import load_image, png_bytes

FAST = dict(arch="skip", depth=2, width=8, input_depth=8, iterations=40, log_every=10, device="cpu")


@pytest.fixture(scope="module")
def own_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("own_dash")
    clean = load_image("camera", 32)
    (d / "clean.png").write_bytes(png_bytes(clean))
    (d / "noisy.png").write_bytes(png_bytes(add_noise(clean, 0.2, seeded(0, STREAM_CORRUPT))))
    store = d / "store"
    ids = [
        run_local("dip", DipParams(corrupted=str(d / "noisy.png"), **FAST), store_dir=store)["run_id"],
        run_local("dip", DipParams(corrupted=str(d / "noisy.png"), image=str(d / "clean.png"), stop="none", **FAST),
                  store_dir=store)["run_id"],
        run_local("dip", DipParams(image="camera", size=32, sigma=0.2, **FAST), store_dir=store)["run_id"],
    ]
    return store, ids


def test_runs_without_reference_show_on_runs_grid_and_analysis(monkeypatch, own_store):
    store, _ = own_store
    for page in ("runs", "grid", "analysis"):
        assert_ok(open_page(monkeypatch, store, page))


def test_analysis_stopping_splits_by_sigma_known_or_estimated(monkeypatch, own_store):
    store, _ = own_store
    at = open_page(monkeypatch, store, "analysis")
    assert_ok(at)
    assert at.selectbox(key="an_stop_by").value == "sigma_source"
    table = next(df.value for df in at.dataframe if "median_gap" in df.value.columns)
    assert set(table["sigma_source"]) == {"known", "estimated"}


def test_compare_marks_the_blind_stop_on_the_detector_statistic(monkeypatch, own_store):
    store, ids = own_store
    at = open_page(monkeypatch, store, "compare", runs=",".join(ids[:2]), cmp_det="true", cmp_det_name="rw")
    assert_ok(at)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    stat = next(s for s in specs if s.get("title") == "rw statistic (det_rw)")
    assert any(layer["mark"]["type"] == "rule" for layer in stat["layer"]), "the stop steps are marked"


def test_compare_shows_a_photo_with_no_clean_copy_as_such_and_its_restored_image(monkeypatch, own_store):
    store, ids = own_store
    at = open_page(monkeypatch, store, "compare", runs=",".join(ids[:2]))
    assert_ok(at)
    texts = " ".join(img.proto.imgs[0].caption for img in at.get("image"))
    assert "clean: none given (no reference)" in texts, texts
    assert texts.count("restored (stopped by") >= 1, texts
    assert "stopped by nan" not in texts and "stopped by None" not in texts, texts
