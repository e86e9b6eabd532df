"""Early stopping measured: the per-detector gap table, compute saved, the iteration claim
answered with stop steps, and the dashboard's Stopping section and Compare marks/toggle.

Runs are built here (summaries shaped like `priorlab.tasks.dip.fit`'s: stop_step_<d>, stop_gap_<d>,
stopped_by, iterations_done; metric rows det_<d>), so no training is needed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import stopping
from priorlab.analysis.findings import CLAIMS, CONTRADICTED, NOT_ENOUGH, SUPPORTED, evaluate
from priorlab.analysis.store import Store
from apptest_helpers import assert_ok, open_page


def make_runs(n_per: int = 4, iterations: int = 1500, wmv_step: int = 700, dp_step: int = 800,
              sigma: float = 0.5, stop: str | None = None) -> pd.DataFrame:
    """Finished DIP runs over arch x noise: wmv's gap 0.2 dB on skip, 1.0 on seed-double; dp's
    0.1 + 0.1 * seed; a third detector `zz` only on gaussian runs (names are discovered)."""
    rows = []
    for arch in ("skip", "seed-double"):
        for noise in ("gaussian", "poisson"):
            for seed in range(n_per):
                r = {"run_id": f"{arch}-{noise}-{seed}", "kind": "dip", "status": "done", "arch": arch,
                     "noise": noise, "sigma": sigma, "seed": seed, "iterations": iterations,
                     "best_step": 600 + 10 * seed, "best_psnr": 28.0,
                     "stop_step_wmv": wmv_step + 10 * seed, "stop_gap_wmv": 0.2 if arch == "skip" else 1.0,
                     "stop_step_dp": dp_step + 10 * seed, "stop_gap_dp": 0.1 + 0.1 * seed,
                     "stopped_by": None, "iterations_done": iterations}
                if noise == "gaussian":
                    r.update(stop_step_zz=300, stop_gap_zz=2.0)
                if stop:
                    r.update(stopped_by=stop, iterations_done=r[f"stop_step_{stop}"])
                rows.append(r)
    rows.append({"run_id": "pruned-1", "kind": "dip", "status": "pruned", "arch": "skip", "noise": "gaussian",
                 "sigma": sigma, "seed": 9, "iterations": iterations})
    df = pd.DataFrame(rows)
    df.attrs["param_columns"] = ["arch", "noise", "sigma", "seed", "iterations"]
    return df


def test_detectors_are_discovered_from_the_columns():
    assert stopping.detectors(make_runs()) == ["dp", "wmv", "zz"]


def test_stop_table_per_detector_and_split_by_a_factor():
    runs = make_runs()
    t = stopping.stop_table(runs).set_index("detector")
    assert t.loc["wmv", "n"] == 16 and t.loc["zz", "n"] == 8  # the pruned run is left out
    assert t.loc["wmv", "median_gap"] == pytest.approx(0.6)  # half 0.2, half 1.0
    assert t.loc["wmv", "share_within"] == pytest.approx(0.5)
    assert t.loc["dp", "median_gap"] == pytest.approx(0.25)
    assert t.loc["dp", "p90_gap"] == pytest.approx(np.quantile([0.1, 0.2, 0.3, 0.4] * 4, 0.9))
    assert t.loc["dp", "share_within"] == pytest.approx(1.0)
    assert t.loc["zz", "mean_stop_frac"] == pytest.approx(300 / 1500)
    assert t.loc["zz", "saved"] == pytest.approx(0.8)
    assert list(t.index[:1]) == ["dp"], "sorted by median gap, best first"

    by_arch = stopping.stop_table(runs, by="arch").set_index(["detector", "arch"])
    assert by_arch.loc[("wmv", "skip"), "median_gap"] == pytest.approx(0.2)
    assert by_arch.loc[("wmv", "seed-double"), "median_gap"] == pytest.approx(1.0)
    assert by_arch.loc[("wmv", "skip"), "share_within"] == 1.0
    assert by_arch.loc[("wmv", "seed-double"), "share_within"] == 0.0
    by_noise = stopping.stop_table(runs, by="noise")
    assert set(by_noise.loc[by_noise["detector"] == "zz", "noise"]) == {"gaussian"}
    assert stopping.split_factors(runs)[:2] == ["arch", "noise"]


def test_saved_counts_runs_a_detector_really_ended():
    assert stopping.saved(make_runs()).empty
    s = stopping.saved(make_runs(stop="wmv", wmv_step=600)).set_index("stopped_by")
    assert s.loc["wmv", "n"] == 16
    assert s.loc["wmv", "mean_done_frac"] == pytest.approx(np.mean([600 + 10 * k for k in range(4)]) / 1500)
    assert s.loc["wmv", "median_gap"] == pytest.approx(0.6)


def _claim_row(runs: pd.DataFrame) -> pd.Series:
    claim = next(c for c in CLAIMS if c.id == "iterations-stop-after-1000")
    return evaluate(runs, [claim]).iloc[0]


def test_iteration_claim_is_answered_with_the_detectors_stop_steps():
    # Detectors stop around 700-830 in every 1500-iteration run: stop before 1000, so 1500 cannot help.
    row = _claim_row(make_runs())
    assert row["verdict"] == CONTRADICTED, row["explanation"]
    assert row["n_pairs"] == 17 - 1  # one value per finished run
    assert "before 1000" in row["explanation"] and "wmv median" in row["explanation"]
    assert "oracle best_step median" in row["explanation"]
    # Stops past 1000: the longer budget can help.
    assert _claim_row(make_runs(wmv_step=1200, dp_step=1300)).loc["verdict"] == SUPPORTED
    # Short runs cannot say whether the best stop lies past 1000.
    short = _claim_row(make_runs(iterations=40, wmv_step=20, dp_step=30))
    assert short["verdict"] == NOT_ENOUGH and "more than 1000 iterations" in short["explanation"]
    # Other noise levels are not the report's claim.
    assert _claim_row(make_runs(sigma=0.1))["verdict"] == NOT_ENOUGH


# ---------------------------------------------------------------- dashboard

@pytest.fixture()
def stopping_store(tmp_path):
    """A small store written through the Store API: 8 finished DIP runs with detectors wmv
    and dp (summaries and det_<d> rows) and one pruned run."""
    store = Store(tmp_path / "store")
    runs = make_runs(n_per=2)
    params_cols = runs.attrs["param_columns"]
    records = [{"run_id": r["run_id"], "kind": "dip",
                "params": {**{c: r[c] for c in params_cols}, "task": "denoise", "depth": 2}} for _, r in runs.iterrows()]
    store.register_runs("stop", records)
    steps = np.arange(100, 1501, 100)
    for _, r in runs.iterrows():
        store.start_run(r["run_id"])
        last = 1500 if r["status"] == "done" else 300
        for s in steps[steps <= last]:
            psnr = 28.0 - ((s - 650) / 400.0) ** 2
            store.log_metrics(r["run_id"], int(s), {"psnr": psnr, "loss": 1.0 / s, "det_wmv": 1.0 / s, "det_dp": s / 1500})
        if r["status"] == "done":
            summary = {k: r[k] for k in runs.columns if k.startswith(("stop_", "best_")) and pd.notna(r[k])}
            store.finish_run(r["run_id"], "done", summary={**summary, "final_psnr": 24.0, "stopped_by": None})
        else:
            store.mark_unfinished([r["run_id"]], "pruned")
    return tmp_path / "store"


def test_analysis_page_has_a_stopping_section_split_by_factor(monkeypatch, stopping_store):
    at = open_page(monkeypatch, stopping_store, "analysis")
    assert_ok(at)
    assert "Stopping" in [s.value for s in at.subheader]
    assert any("1 dip run pruned" in c.value for c in at.caption), [c.value for c in at.caption]
    assert at.selectbox(key="an_stop_by").value == "arch"
    table = next(df.value for df in at.dataframe if "median_gap" in df.value.columns)
    assert set(table["detector"]) == {"wmv", "dp", "zz"} and "arch" in table.columns
    assert table.set_index(["detector", "arch"]).loc[("wmv", "skip"), "median_gap"] == pytest.approx(0.2)

    at = open_page(monkeypatch, stopping_store, "analysis", an_stop_by="noise")  # the split lives in the URL
    assert_ok(at)
    table = next(df.value for df in at.dataframe if "median_gap" in df.value.columns)
    assert "noise" in table.columns and "arch" not in table.columns


def test_compare_marks_stop_steps_and_toggles_a_detector_statistic(monkeypatch, stopping_store):
    ids = "skip-gaussian-0,seed-double-gaussian-0"
    at = open_page(monkeypatch, stopping_store, "compare", runs=ids)
    assert_ok(at)
    charts = at.get("vega_lite_chart")
    specs = [json.loads(c.proto.spec) for c in charts]
    psnr = next(s for s in specs if s.get("title") == "psnr")
    rules = [l for l in psnr["layer"] if l["mark"]["type"] == "rule"]
    assert rules and rules[0]["encoding"]["x"]["field"] == "stop_step", "detector stop steps marked on PSNR"
    assert rules[0]["encoding"]["strokeDash"]["field"] == "detector"
    loss = next(s for s in specs if s.get("title") == "loss")
    assert "layer" not in loss or all(l["mark"]["type"] != "rule" for l in loss["layer"]), "only PSNR is marked"
    n_before = len(charts)
    assert at.toggle(key="cmp_det").value is False

    at = open_page(monkeypatch, stopping_store, "compare", runs=ids, cmp_det="true", cmp_det_name="dp")
    assert_ok(at)
    assert at.toggle(key="cmp_det").value is True and at.selectbox(key="cmp_det_name").value == "dp"
    charts = at.get("vega_lite_chart")
    assert len(charts) == n_before + 2
    assert any(json.loads(c.proto.spec).get("title") == "dp statistic (det_dp)" for c in charts)
