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
