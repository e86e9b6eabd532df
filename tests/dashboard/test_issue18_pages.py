"""Issue 18's dashboard defects on small hand-written stores (the store's own write API, no Ray).

Every page must survive every parameter type (lists, dicts, None, NaN) of every kind, and every
page that aggregates must scope by sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402

PAGES = ["sweeps", "runs", "compare", "grid", "analysis", "findings", "stylegan"]


def odd_params_store(root: Path) -> Path:
    """A failed StyleGAN run with a list and a dict parameter, a None and a NaN, beside a done one,
    in two sweeps (the failed card first)."""
    store = Store(root)
    for name in ("sg-a", "sg-b"):
        store.upsert_sweep(name, "kind: stylegan-sample\n", "host", status="error")
    params = {"generator": "random:16", "spaces": ["z", "w"], "classifier": {"kind": "builtin", "name": "red"},
              "truncation_psi": None, "n": 4, "seed": 0}
    store.register_runs("sg-a", [{"run_id": "sgfail", "kind": "stylegan-sample", "params": params}])
    store.register_runs("sg-b", [{"run_id": "sgdone", "kind": "stylegan-sample",
                                  "params": {**params, "spaces": ["w"], "seed": 1, "truncation_psi": float("nan")}}])
    store.start_run("sgfail")
    store.finish_run("sgfail", "error", error="Traceback\nValueError: boom")
    store.start_run("sgdone")
    store.finish_run("sgdone", "done", {"z_diversity": 0.3, "w_diversity": 0.2, "n": 4})
    return root


def test_sweeps_page_draws_every_card_when_a_failed_run_has_a_list_parameter(monkeypatch, tmp_path):
    root = odd_params_store(tmp_path / "s")
    at = open_page(monkeypatch, root, "sweeps")
    assert_ok(at)
    heads = [s.value for s in at.subheader]
    assert any("sg\\-a" in h or "sg-a" in h for h in heads) and any("sg\\-b" in h or "sg-b" in h for h in heads), heads


@pytest.mark.parametrize("page", PAGES)
def test_every_page_survives_list_dict_none_and_nan_parameters(monkeypatch, tmp_path, page):
    root = odd_params_store(tmp_path / "s")
    assert_ok(open_page(monkeypatch, root, page))


def two_dip_sweeps_store(root: Path) -> Path:
    """Two DIP sweeps with different budgets in one store: `long` (4 runs, high PSNR) and `short`
    (6 runs, low PSNR), both varying `arch`."""
    store = Store(root)
    for name, n, psnr in (("long", 4, 30.0), ("short", 6, 20.0)):
        store.upsert_sweep(name, "kind: dip\n", "host", status="done")
        for i in range(n):
            rid = f"{name}{i}"
            arch = ("skip", "seed-single")[i % 2]
            store.register_runs(name, [{"run_id": rid, "kind": "dip", "params": {
                "image": "astronaut", "sigma": 0.1, "arch": arch, "seed": i // 2,
                "iterations": 1000 if name == "long" else 100}}])
            store.start_run(rid)
            store.finish_run(rid, "done", {"best_psnr": psnr + (1.0 if arch == "skip" else 0.0) + 0.1 * i})
    return root


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_analysis_scopes_by_sweep_and_says_what_it_aggregates(monkeypatch, tmp_path):
    root = two_dip_sweeps_store(tmp_path / "s")
    everything = open_page(monkeypatch, root, "analysis", factor="arch")
    assert_ok(everything)
    assert "10 finished dip runs" in _captions(everything) and "all 2 sweeps" in _captions(everything)
    one = open_page(monkeypatch, root, "analysis", factor="arch", sweep="long")
    assert_ok(one)
    assert "4 finished dip runs" in _captions(one) and "sweep long" in _captions(one)
    # The effect table holds only the long sweep's runs: every level's mean is above 30 dB.
    effect = one.dataframe[0].value
    means = [v for c in effect.columns if "mean" in str(c).lower() for v in effect[c]]
    assert means and min(means) > 29.0, effect


def test_findings_scope_by_sweep(monkeypatch, tmp_path):
    root = two_dip_sweeps_store(tmp_path / "s")
    at = open_page(monkeypatch, root, "findings", sweep="short")
    assert_ok(at)
    assert "sweep short" in _captions(at)
    assert any(s.label == "Sweeps" and s.value == ["short"] for s in at.multiselect)


def test_runs_table_shows_what_each_run_cost(monkeypatch, tmp_path):
    from priorlab import vocab

    store = Store(tmp_path / "s")
    store.upsert_sweep("cost", "kind: dip\n", "host", status="done")
    for i in range(2):
        store.register_runs("cost", [{"run_id": f"c{i}", "kind": "dip", "params": {"image": "astronaut", "seed": i}}])
        store.start_run(f"c{i}")
        store.finish_run(f"c{i}", "done", {"best_psnr": 25.0 + i, vocab.WALL_S: 10.0, vocab.ITERS_PER_S: 50.0,
                                           vocab.PEAK_RSS_MB: 700.0 + i, vocab.PEAK_GPU_MB: 300.0})
    at = open_page(monkeypatch, tmp_path / "s", "runs")
    assert_ok(at)
    table = at.dataframe[0].value
    assert {*vocab.RESOURCE_KEYS} <= set(table.columns)
    assert sorted(table[vocab.PEAK_RSS_MB]) == [700.0, 701.0]
