"""The Search page: a whole sweep at a glance (issue 18 §2), on a hand-written random search with
ASHA (a log-uniform lr, an arch axis, one run done and the rest pruned) beside a second sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import overview
from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402

CONFIG = """name: lr-search
kind: dip
search: {type: random, num_samples: 12, seed: 0}
grid:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  arch: [skip, seed-double]
"""


def search_store(root: Path, n: int = 24) -> Path:
    rng = np.random.default_rng(0)
    store = Store(root)
    store.upsert_sweep("lr-search", CONFIG, "host", status="done")
    store.upsert_sweep("other", "name: other\nkind: dip\ngrid: {depth: [2, 4]}\n", "host", status="done")
    runs = [{"run_id": f"s{i:03d}", "kind": "dip",
             "params": {"task": "denoise", "lr": float(10 ** rng.uniform(-4, -1)), "arch": ["skip", "seed-double"][i % 2],
                        "size": 64}} for i in range(n)]
    store.register_runs("lr-search", runs)
    store.register_runs("other", [{"run_id": f"o{i}", "kind": "dip", "params": {"task": "denoise", "depth": d}}
                                  for i, d in enumerate((2, 4, 2, 4))])
    for i, r in enumerate(runs):
        lr = r["params"]["lr"]
        peak = 28 - 3 * abs(np.log10(lr) + 2) + (1.0 if r["params"]["arch"] == "skip" else 0.0)
        store.start_run(r["run_id"])
        for step in (10, 20, 30):
            store.log_metrics(r["run_id"], step, {"psnr": peak * step / 30, "psnr_ema": peak * step / 31})
        store.finish_run(r["run_id"], "done" if i == 0 else "pruned",
                         {"best_psnr": peak, "wall_s": 3.0 + i, "iters_per_s": 100.0, "peak_rss_mb": 300.0 + i})
    for i in range(4):
        store.start_run(f"o{i}")
        store.finish_run(f"o{i}", "done", {"best_psnr": 20.0 + i})
    store.close()
    return root


def test_search_page_shows_the_whole_search_of_the_chosen_sweep(monkeypatch, tmp_path):
    root = search_store(tmp_path / "s")
    at = open_page(monkeypatch, root, "search", sr_sweep="lr-search")
    assert_ok(at)
    captions = " ".join(str(c.value) for c in at.caption)
    assert "24 dip runs of sweep lr\\-search" in captions or "24 dip runs of sweep lr-search" in captions, captions
    assert "23 pruned" in captions
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart") + at.get("arrow_vega_lite_chart")]
    assert len(specs) >= 4  # parallel coordinates, importance, slices, curves
    text = json.dumps(specs)
    assert '"type": "log"' in text  # the log-uniform lr is on a log axis
    imp = [str(c.value) for c in at.caption if "explains the largest share" in str(c.value)]
    assert imp and imp[0].startswith("lr"), imp


def test_search_page_state_lives_in_the_url_and_the_brush_narrows_the_runs(monkeypatch, tmp_path):
    root = search_store(tmp_path / "s")
    at = open_page(monkeypatch, root, "search", sr_sweep="lr-search", br_arch="skip", sr_group="arch",
                   sr_metric="best_psnr")
    assert_ok(at)
    said = " ".join(str(m.value) for m in at.markdown)
    assert "**12** of 24 runs inside the brush" in said, said
    assert at.selectbox(key="sr_group").value == "arch"
    assert any("Mean psnr per arch level" in str(c.value) for c in at.caption)


def test_search_page_survives_every_kind_and_a_sweep_that_varies_nothing(monkeypatch, tmp_path):
    root = search_store(tmp_path / "s")
    store = Store(root)
    store.upsert_sweep("one", "name: one\nkind: dip\n", "host")
    store.register_runs("one", [{"run_id": "lone", "kind": "dip", "params": {"task": "denoise"}}])
    store.start_run("lone")
    store.finish_run("lone", "done", {"best_psnr": 20.0})
    store.close()
    at = open_page(monkeypatch, root, "search", sr_sweep="one")
    assert_ok(at)
    assert any("varies nothing" in str(i.value) for i in at.info)


def test_importance_finds_the_parameter_that_matters_with_an_interval():
    rng = np.random.default_rng(1)
    n = 300
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "kind": "dip", "lr": 10 ** rng.uniform(-4, -1, n),
                         "arch": rng.choice(["a", "b"], n), "seed": rng.integers(0, 3, n)})
    runs["best_psnr"] = -3 * np.abs(np.log10(runs["lr"]) + 2) + rng.normal(0, 0.1, n)
    runs.attrs["param_columns"] = ["lr", "arch", "seed"]
    axes = overview.search_axes(runs, overview.log_axes([CONFIG]))
    assert axes.set_index("axis").loc["lr", "log"] and axes.set_index("axis").loc["lr", "continuous"]
    imp = overview.importance(runs, "best_psnr", axes)
    assert imp.iloc[0]["axis"] == "lr" and imp.iloc[0]["importance"] > 0.5
    assert imp.iloc[0]["lo"] <= imp.iloc[0]["importance"] <= imp.iloc[0]["hi"]
    fan = overview.importance(runs, "best_psnr", axes, method="fanova", n_boot=0)
    assert fan.iloc[0]["axis"] == "lr"


def test_importance_leaves_out_runs_that_lack_a_categorical_axis():
    # A sweep whose groups set a parameter only for some runs (the synthetic inpaint sweep's
    # `size`): those runs used to reach Optuna as the level "none", which it refused.
    rng = np.random.default_rng(2)
    n = 120
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "kind": "dip", "arch": rng.choice(["a", "b"], n),
                         "size": [None if i % 3 == 0 else (32, 64)[i % 2] for i in range(n)]})
    runs["best_psnr"] = (runs["arch"] == "a") * 3.0 + rng.normal(0, 0.1, n)
    runs.attrs["param_columns"] = ["arch", "size"]
    imp = overview.importance(runs, "best_psnr", overview.search_axes(runs), n_boot=3)
    assert imp.iloc[0]["axis"] == "arch" and set(imp["axis"]) == {"arch", "size"}


def test_curve_bands_give_a_mean_and_a_95_percent_band_per_level():
    curves = pd.DataFrame({"run_id": ["a", "a", "b", "b", "c", "c"], "step": [1, 2, 1, 2, 1, 2],
                           "value": [1.0, 2.0, 3.0, 4.0, 10.0, 10.0]})
    bands = overview.curve_bands(curves, {"a": "x", "b": "x", "c": "y"}).set_index(["level", "step"])
    assert bands.loc[("x", 1), "mean"] == 2.0 and bands.loc[("x", 1), "n"] == 2
    assert bands.loc[("x", 1), "lo"] < 2.0 < bands.loc[("x", 1), "hi"]
    assert bands.loc[("y", 2), "lo"] == bands.loc[("y", 2), "hi"] == 10.0


def test_analysis_overview_and_importance_never_import_torch():
    code = ("import sys, numpy as np, pandas as pd\n"
            "from priorlab.analysis import overview\n"
            "r = pd.DataFrame({'run_id': list('abcdefgh'), 'kind': 'dip', 'lr': np.logspace(-4, -1, 8),"
            " 'best_psnr': np.arange(8.0)}); r.attrs['param_columns'] = ['lr']\n"
            "overview.importance(r, 'best_psnr', overview.search_axes(r), n_boot=2)\n"
            "assert 'torch' not in sys.modules and 'ray' not in sys.modules, 'torch or ray imported'\n")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr


def test_parallel_coordinates_label_every_axis(monkeypatch, tmp_path):
    """Each axis carries its own value labels (they once all sat on one "undefined" axis)."""
    import pyarrow as pa

    at = open_page(monkeypatch, search_store(tmp_path / "s"), "search", sr_sweep="lr-search")
    assert_ok(at)
    chart = next(c for c in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
                 if '"text"' in c.proto.spec and '"pos"' in c.proto.spec)
    spec = json.loads(chart.proto.spec)
    text_layer = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    frames = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
    labels = frames[text_layer["data"]["name"]]
    axes = set(labels["axis"])
    assert labels["axis"].notna().all() and {"lr", "arch"} <= axes, labels.head()


def test_importance_bars_and_intervals_share_one_row_order(monkeypatch, tmp_path):
    """The walk found the importance chart naming `sigma` in its caption but drawing sigma's bar on
    another axis's row: bars and error bars sorted by different fields (`-x` is importance in one
    layer, the interval's low end in the other), so Vega laid the rows out twice."""
    at = open_page(monkeypatch, search_store(tmp_path / "s"), "search", sr_sweep="lr-search")
    assert_ok(at)
    chart = next(c for c in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
                 if '"errorbar"' in c.proto.spec)
    sorts = [layer["encoding"]["y"].get("sort") for layer in json.loads(chart.proto.spec)["layer"]]
    assert all(isinstance(s, list) for s in sorts) and all(s == sorts[0] for s in sorts), sorts
    assert set(sorts[0]) == {"lr", "arch"}


def test_slices_fit_the_page(monkeypatch, tmp_path):
    """The walk found the slice plots drawn as one fixed-width concatenation (3 x 260 px plus
    axes) that ran past the page's right edge at a 1400 px window: each slice is now its own
    chart, as wide as its column."""
    at = open_page(monkeypatch, search_store(tmp_path / "s"), "search", sr_sweep="lr-search")
    assert_ok(at)
    specs = [c.proto.spec for c in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")]
    assert not any('"hconcat"' in s or '"vconcat"' in s for s in specs)
    assert sum('"mark": {"type": "circle"' in s for s in specs) == 2  # lr and arch


def test_a_log_uniform_axis_is_continuous_however_few_samples_it_drew(tmp_path):
    """The walk's search (six runs) showed lr's slice as six text categories ('0.00153',
    '0.03663', '1.603e-06', sorted as text) instead of a log axis."""
    runs = Store(search_store(tmp_path / "s", n=6)).runs(sweep="lr-search")
    axes = overview.search_axes(runs, overview.log_axes([CONFIG])).set_index("axis")
    assert axes.loc["lr", "continuous"] and axes.loc["lr", "log"], axes
    assert not axes.loc["arch", "continuous"]


def test_importance_rows_are_tall_enough_to_read(monkeypatch, tmp_path):
    """The chart's height includes its x axis and title (~60 px): with two parameters, 40 + 28 px
    per row left each row 9 px, the labels 'lr' and 'arch' on top of each other."""
    at = open_page(monkeypatch, search_store(tmp_path / "s"), "search", sr_sweep="lr-search")
    assert_ok(at)
    spec = json.loads(next(c.proto.spec for c in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
                           if '"errorbar"' in c.proto.spec))
    assert spec["height"] >= 60 + 20 * 2, spec["height"]


def test_parallel_axis_labels_never_print_on_top_of_each_other():
    """The walk's search printed best_psnr's five pruned values (5.87 … 5.91) and two close lr
    values on one spot of their axes, unreadable."""
    pf = pd.DataFrame({"axis": ["m"] * 6 + ["lr"] * 4,
                       "pos": [0.0, 0.01, 0.02, 0.5, 0.98, 1.0, 0.0, 0.3, 0.31, 1.0],
                       "value": ["5.87", "5.88", "5.89", "9.7", "11.8", "11.85", "1e-06", "2e-05", "2.1e-05", "0.04"]})
    labels = overview.axis_labels(pf)
    assert labels.loc[labels["axis"] == "m", "value"].tolist() == ["5.87", "9.7", "11.85"]
    assert labels.loc[labels["axis"] == "lr", "value"].tolist() == ["1e-06", "2e-05", "0.04"]
