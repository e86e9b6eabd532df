"""Issue 18 defect 4: the Grid page's state after a switch of kind or task, from the URL, and for
the baselines."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorlab import vocab
from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402


def png(color=(200, 30, 30), size=16) -> bytes:
    from PIL import Image

    from priorlab.dashboard import images

    return images.png_bytes(Image.new("RGB", (size, size), color))


def grid_store(root: Path) -> Path:
    """DIP denoising (depth × sigma) and inpainting (depth × region 16/32) runs with snapshots, a
    finished StyleGAN sample run, and baselines (method × sigma, no depth)."""
    store = Store(root)
    store.upsert_sweep("g", "kind: dip\n", "host", status="done")
    specs = []
    for depth in (2, 4):
        for sigma in (0.1, 0.5):
            specs.append({"run_id": f"den{depth}{int(sigma * 10)}", "kind": vocab.DIP, "params": {
                "image": "astronaut", "task": "denoise", "depth": depth, "sigma": sigma, "region": None,
                "seed": 0}})
        for region in (16, 32):
            specs.append({"run_id": f"inp{depth}{region}", "kind": vocab.DIP, "params": {
                "image": "astronaut", "task": "inpaint", "depth": depth, "sigma": 0.0, "region": region,
                "seed": 0}})
    for method in ("nlm", "tv"):
        for sigma in (0.1, 0.5):
            specs.append({"run_id": f"base{method}{int(sigma * 10)}", "kind": vocab.DIP_BASELINE, "params": {
                "image": "astronaut", "task": "denoise", "method": method, "sigma": sigma, "seed": 0}})
    specs.append({"run_id": "sample0", "kind": vocab.SG_SAMPLE, "params": {"generator": "random:16", "n": 2,
                                                                             "seed": 0}})
    store.register_runs("g", specs)
    for spec in specs:
        rid = spec["run_id"]
        store.start_run(rid)
        if spec["kind"] == vocab.SG_SAMPLE:
            store.log_artifact(rid, 0, vocab.grid_artifact(), png(size=32))
        else:
            store.log_artifact(rid, 0, vocab.CORRUPTED, png((9, 9, 9)))
            for step in (10, 20):
                store.log_artifact(rid, step, vocab.OUTPUT, png())
        store.finish_run(rid, vocab.DONE, {"best_psnr": 20.0})
    return root


def rows_caption(at) -> str:
    return next(m.value for m in at.markdown if "rows ×" in m.value)


def switch(at, kind: str):
    at.segmented_control(key="grid_kind").set_value(kind).run()
    assert_ok(at)


def rows(at) -> tuple[str, str]:
    return at.selectbox(key="grid_rows").value, at.selectbox(key="grid_rows2").value


def test_rows_and_caption_agree_after_kind_switches_and_a_task_switch(monkeypatch, tmp_path):
    root = grid_store(tmp_path / "s")
    at = open_page(monkeypatch, root, "grid")
    assert_ok(at)
    for kind in (vocab.DIP_BASELINE, vocab.SG_SAMPLE, vocab.DIP):
        switch(at, kind)
    assert rows(at) == ("depth", "sigma"), rows(at)  # dip's own rows, not the baselines' sigma
    assert not any(s.key.startswith("fix_") for s in at.selectbox), [s.key for s in at.selectbox]
    at.selectbox(key="grid_task").set_value("inpaint").run()
    assert_ok(at)
    outer, inner = rows(at)
    assert (outer, inner) == ("depth", "region"), (outer, inner)  # inpainting varies region, not sigma
    caption = rows_caption(at)
    assert "rows: depth × region" in caption, caption  # the caption names what the widgets show
    assert not any(s.key == "fix_region" for s in at.selectbox), "region is a row factor, not stuck fixed"
    # the same URL in a fresh browser opens the same grid
    fresh = open_page(monkeypatch, root, "grid", grid_task="inpaint")
    assert_ok(fresh)
    assert rows_caption(fresh) == caption and rows(fresh) == (outer, inner)


def test_a_value_kept_for_one_task_does_not_leak_into_another(monkeypatch, tmp_path):
    at = open_page(monkeypatch, grid_store(tmp_path / "s"), "grid")
    at.selectbox(key="grid_rows").set_value("sigma").run()  # denoise: sigma outer
    assert_ok(at)
    at.selectbox(key="grid_task").set_value("inpaint").run()
    assert_ok(at)
    assert rows(at) == ("depth", "region"), rows(at)
    at.selectbox(key="grid_task").set_value("denoise").run()
    assert_ok(at)
    assert rows(at)[0] == "sigma", rows(at)  # denoise's own choice comes back


def test_baselines_get_rows_of_the_factors_they_vary(monkeypatch, tmp_path):
    at = open_page(monkeypatch, grid_store(tmp_path / "s"), "grid")
    switch(at, vocab.DIP_BASELINE)
    offered = set(at.selectbox(key="grid_rows").options) | set(at.selectbox(key="grid_rows2").options)
    assert offered <= {"method", "sigma", "(none)"}, offered  # no depth, no region
    assert set(rows(at)) == {"method", "sigma"}, rows(at)  # not dip's leftover sigma × sigma
    assert "rows: method × sigma" in rows_caption(at)
