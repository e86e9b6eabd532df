"""Dashboard defects the browser walk (tests/e2e/test_dashboard_walk.py) found, each pinned on a
small hand-written store (the store's own write API, no Ray, no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402


def dip_and_stylegan_store(root: Path) -> Path:
    """Sweep `d` of two DIP runs, sweep `s` of one StyleGAN sampling run."""
    store = Store(root)
    store.upsert_sweep("d", "kind: dip\n", "host", status="done")
    store.upsert_sweep("s", "kind: stylegan-sample\n", "host", status="done")
    store.register_runs("d", [{"run_id": f"dip{i}", "kind": "dip",
                               "params": {"task": "denoise", "image": "astronaut", "depth": 1 + i, "sigma": 0.1}}
                              for i in range(2)])
    store.register_runs("s", [{"run_id": "sg0", "kind": "stylegan-sample",
                               "params": {"generator": "random:16", "n": 4, "spaces": ["z", "w"]}}])
    for i in range(2):
        store.start_run(f"dip{i}")
        store.finish_run(f"dip{i}", "done", {"best_psnr": 20.0 + i, "best_step": 10 * (i + 1)})
    store.start_run("sg0")
    store.finish_run("sg0", "done", {"resolution": 16, "z_diversity": 0.3})
    return root


def test_runs_table_of_one_sweep_has_no_column_empty_for_all_its_runs(monkeypatch, tmp_path):
    """With `?sweep=` naming a DIP sweep, the table still carried every StyleGAN column of the
    store, all blank: ~14,000 px of empty columns to scroll past on the walk's store."""
    at = open_page(monkeypatch, dip_and_stylegan_store(tmp_path / "s"), "runs", sweep="d")
    assert_ok(at)
    table = at.dataframe[0].value
    assert set(table["run_id"]) == {"dip0", "dip1"}
    empty = [c for c in table.columns if table[c].isna().all()]
    assert not empty, empty
    assert not {"resolution", "z_diversity", "generator", "n", "spaces"} & set(table.columns)


def arch_pairs_store(root: Path) -> Path:
    """Two architectures at two noise levels on one image (two matched pairs) and one run of
    another image and budget without a partner (so image and iterations vary, but not in pairs)."""
    store = Store(root)
    store.upsert_sweep("d", "kind: dip\n", "host", status="done")
    runs = [{"run_id": f"{arch[5]}{sigma}", "kind": "dip",
             "params": {"task": "denoise", "image": "astronaut", "iterations": 40, "arch": arch, "sigma": sigma}}
            for arch in ("seed-double", "seed-single") for sigma in (0.1, 0.2)]
    runs.append({"run_id": "lone", "kind": "dip", "params": {"task": "denoise", "image": "coffee", "iterations": 80,
                                                            "arch": "seed-double", "sigma": 0.1}})
    store.register_runs("d", runs)
    for i, r in enumerate(runs):
        store.start_run(r["run_id"])
        store.finish_run(r["run_id"], "done", {"best_psnr": 20.0 + i})
    return root


def test_paired_table_leads_with_the_values_and_drops_settings_shared_by_every_pair(monkeypatch, tmp_path):
    """The walk found the pairs table beside its scatter with half its columns off-screen, most of
    them settings every pair shares (task, image, iterations ...) before the values."""
    at = open_page(monkeypatch, arch_pairs_store(tmp_path / "s"), "analysis")
    assert_ok(at)
    table = next(t.value for t in at.dataframe if "value_a" in t.value.columns)
    assert list(table.columns) == ["value_a", "value_b", "diff", "sigma", "run_id_a", "run_id_b"], list(table.columns)


def test_paired_metric_labels_fit_their_quarter_of_the_page(monkeypatch, tmp_path):
    """'mean difference (seed-double − …' was cut at a 1400 px window (a quarter column holds
    about 24 characters); a plug-in's `module:function` level would leave nothing readable. The
    levels are named in the Level A / Level B boxes right above."""
    at = open_page(monkeypatch, arch_pairs_store(tmp_path / "s"), "analysis")
    assert_ok(at)
    labels = [m.label for m in at.metric]
    assert "mean difference A − B" in labels and "win rate of A" in labels, labels
    assert all(len(label) <= 24 for label in labels), labels


def test_analysis_tables_keep_significant_digits(monkeypatch, tmp_path):
    """The walk's Analysis tables printed '%.3f': a traversal's dim as 64.000 and anything below
    5e-4 (an lr, a loss) as 0.000. Numbers keep their significant digits in every table."""
    import json

    at = open_page(monkeypatch, arch_pairs_store(tmp_path / "s"), "analysis", an_by="arch")
    assert_ok(at)
    assert at.dataframe
    for t in at.dataframe:  # a column format, or the display values of a Styler (widgets.dashed)
        formats = {c.get("type_config", {}).get("format") for c in json.loads(t.proto.columns).values()} - {None}
        assert all(f.endswith("g") for f in formats), formats
        assert formats or t.proto.arrow_data.HasField("styler"), "numbers in Streamlit's default format"
