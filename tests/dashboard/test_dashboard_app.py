"""The Streamlit dashboard, page by page, through streamlit.testing (no browser).

Each test runs `dashboard/app.py` (the real `st.navigation` entry script) and switches to a
page with `AppTest.switch_page("views/<name>.py")` — the pages' URL paths equal their file
names, so this works even before the first run — after setting `?…` query parameters the
way a shared link would. The stores: `sweep_store` (a real tiny sweep through Ray) and
`empty_store`. Expected numbers are computed here from `Store.runs()` with pandas, not by the
functions the pages call.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from apptest_helpers import APP, ROOT, assert_ok, open_page  # noqa: E402

PAGES = ["sweeps", "runs", "compare", "grid", "analysis", "findings", "stylegan"]






def texts(at: AppTest, *kinds: str) -> str:
    out = []
    for kind in kinds or ("title", "subheader", "markdown", "caption", "info", "warning", "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(out)


def done_dip(store: Path) -> pd.DataFrame:
    runs = Store(store).runs()
    return runs[(runs["kind"] == "dip") & (runs["status"] == "done")]


# ------------------------------------------------------------------ empty and missing stores


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_shows_the_hint(monkeypatch, empty_store, page):
    at = open_page(monkeypatch, empty_store, page)
    assert_ok(at)
    shown = texts(at, "info")
    config = "stylegan_smoke" if page == "stylegan" else "dip_smoke"
    assert "runs yet" in shown and f"priorlab sweep configs/{config}.yaml" in shown


def test_folder_without_database_is_an_empty_store_and_stays_untouched(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    for page in ("sweeps", "runs", "analysis"):
        at = open_page(monkeypatch, missing, page)
        assert_ok(at)
        assert "No runs yet" in texts(at, "info")
    assert not missing.exists(), "the dashboard must never create a store"


def test_live_store_refreshes_and_auto_refresh_defaults_on(monkeypatch, tmp_path):
    """A store a sweep is still writing: auto-refresh starts on, a run finished after the
    first render shows on the next rerun (the change token invalidates the cached queries),
    and a failed run shows its traceback."""
    store = Store(tmp_path / "live")
    store.upsert_sweep("live", "kind: dip\n", "host", status="running")
    store.register_runs("live", [{"run_id": f"run{i}", "kind": "dip",
                                  "params": {"arch": "skip", "depth": 2, "seed": i}} for i in range(3)])
    store.start_run("run0")
    store.log_metrics("run0", 10, {"psnr": 12.0})
    store.finish_run("run0", "done", {"best_psnr": 12.0})

    at = open_page(monkeypatch, tmp_path / "live", "sweeps")
    assert_ok(at)
    assert at.toggle(key="auto_refresh").value is True
    assert {m.label: m.value for m in at.metric}["done"] == "1"

    store.start_run("run1")
    store.finish_run("run1", "error", error="Traceback (most recent call last):\nValueError: boom")
    store.start_run("run2")
    at.run()
    assert_ok(at)
    m = {x.label: x.value for x in at.metric}
    assert (m["done"], m["error"], m["running"], m["pending"]) == ("1", "1", "1", "0")
    assert any("ValueError: boom" in str(c.value) for c in at.code)

    at.switch_page("views/runs.py").run()
    assert_ok(at)
    assert sorted(at.dataframe[0].value["status"]) == ["done", "error", "running"]


# ------------------------------------------------------------------ every page on the real sweep


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_sweep_store(monkeypatch, sweep_store, page):
    at = open_page(monkeypatch, sweep_store, page)
    assert_ok(at)
    assert at.title[0].value.lower() == page


def test_sweeps_shows_name_and_counts(monkeypatch, sweep_store):
    store = Store(sweep_store)
    runs = store.runs()
    at = open_page(monkeypatch, sweep_store, "sweeps")
    assert_ok(at)
    assert "tiny" in [s.value for s in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["runs"] == f"{len(runs):,}"
    assert metrics["done"] == f"{int((runs['status'] == 'done').sum()):,}"
    progress = [p for p in at.get("progress")]
    assert progress, "a progress bar per sweep"
    n = int(store.sweeps().set_index("name").loc["tiny", "n_runs"])
    assert f"of {n} runs finished" in progress[0].proto.text


def test_runs_table_has_one_row_per_run(monkeypatch, sweep_store):
    runs = Store(sweep_store).runs()
    at = open_page(monkeypatch, sweep_store, "runs")
    assert_ok(at)
    table = at.dataframe[0].value
    assert len(table) == len(runs)
    assert sorted(table["run_id"]) == sorted(runs["run_id"])
    assert at.get("download_button"), "CSV download"
    keys = {w.key for w in at.multiselect}
    for axis in ("arch", "depth", "sigma", "loss"):
        assert axis in keys, f"a filter for {axis}"


def test_a_sweeps_runs_record_what_they_cost(sweep_store):
    # Through the real trial on Ray (registry-wrapped run): issue 18's resource columns, for
    # every kind (DIP, baselines, StyleGAN); iterations per second only where there are iterations.
    runs = Store(sweep_store).runs()
    done = runs[runs["status"] == "done"]
    assert done["kind"].nunique() >= 3
    assert (done["peak_rss_mb"] > 0).all() and (done["wall_s"] > 0).all()
    assert (done.loc[done["kind"] == "dip", "iters_per_s"] > 0).all()


def test_runs_filters_and_sort_come_from_the_url(monkeypatch, sweep_store):
    runs = Store(sweep_store).runs()
    want = runs[(runs["arch"] == "seed-single") & (runs["loss"] == "l1")]
    at = open_page(monkeypatch, sweep_store, "runs", arch="seed-single", loss="l1", sort="best_psnr")
    assert_ok(at)
    table = at.dataframe[0].value
    assert sorted(table["run_id"]) == sorted(want["run_id"])
    assert list(table["best_psnr"]) == sorted(want["best_psnr"], reverse=True)


def test_runs_metric_range_filter(monkeypatch, sweep_store):
    runs = Store(sweep_store).runs()
    lo, hi = np.nanpercentile(runs["best_psnr"], [25, 75]).round(1)
    at = open_page(monkeypatch, sweep_store, "runs", ranges="best_psnr", range_best_psnr=[str(lo), str(hi)])
    assert_ok(at)
    table = at.dataframe[0].value
    want = runs[(runs["best_psnr"] >= lo) & (runs["best_psnr"] <= hi)]
    assert sorted(table["run_id"]) == sorted(want["run_id"])


def test_selected_runs_lead_to_compare(monkeypatch, sweep_store):
    ids = done_dip(sweep_store)["run_id"].tolist()[:3]
    at = open_page(monkeypatch, sweep_store, "runs", runs=",".join(ids))
    assert_ok(at)
    button = next(b for b in at.button if b.label.startswith("Compare"))
    assert not button.disabled and "3" in button.label
    button.click().run()
    assert_ok(at)
    assert at.title[0].value == "Compare"
    assert at.query_params["runs"] == ",".join(ids)
    assert len(at.get("image")) >= 9


def test_compare_shows_images_curves_and_only_differing_params(monkeypatch, sweep_store):
    runs = done_dip(sweep_store)
    runs = runs[runs["task"] == "denoise"]
    a = runs.iloc[0]
    b = runs[(runs["arch"] != a["arch"]) & (runs["depth"] == a["depth"]) & (runs["sigma"] == a["sigma"])
             & (runs["loss"] == a["loss"])].iloc[0]
    at = open_page(monkeypatch, sweep_store, "compare", runs=f"{a['run_id']},{b['run_id']}")
    assert_ok(at)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    for name in ("clean", "corrupted"):
        assert captions.count(name) == 2
    assert sum(c.startswith("output @") for c in captions) == 2
    assert len(at.get("vega_lite_chart")) >= 2, "metric curves"
    diff = at.dataframe[0].value
    assert list(diff.index) == ["arch"], "only the parameter that differs"

    at.toggle(key="diff").set_value(True)
    at.toggle(key="ba").set_value(True)
    at.switch_page("views/compare.py").run()
    assert_ok(at)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert sum(c.startswith("|output − clean|") for c in captions) == 2
    assert sum(c.startswith("corrupted | output") for c in captions) == 2

    first_step = min(int(s) for s in Store(sweep_store).artifacts([a["run_id"]], ["output"])["step"])
    at.select_slider(key="step").set_value(first_step)
    at.switch_page("views/compare.py").run()
    assert_ok(at)
    assert f"output @ {first_step}" in [img.proto.imgs[0].caption for img in at.get("image")]


def test_compare_survives_missing_artifact_files(monkeypatch, sweep_store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(sweep_store, copy)
    ids = done_dip(copy)["run_id"].tolist()[:2]
    store = Store(copy)
    for sha in store.artifacts(ids)["sha256"]:
        store.artifact_path(sha).unlink(missing_ok=True)
    at = open_page(monkeypatch, copy, "compare", runs=",".join(ids))
    assert_ok(at)
    assert len(at.get("image")) >= 6, "placeholders instead of the missing images"


def test_compare_without_runs_explains(monkeypatch, sweep_store):
    at = open_page(monkeypatch, sweep_store, "compare", runs="nosuchrun")
    assert_ok(at)
    assert "nosuchrun" in texts(at, "warning")
    assert "Pick two to six runs" in texts(at, "info")


def test_grid_renders_one_figure_with_download(monkeypatch, sweep_store):
    runs = done_dip(sweep_store)
    den = runs[runs["task"] == "denoise"]
    at = open_page(monkeypatch, sweep_store, "grid")
    assert_ok(at)
    figures = at.get("image")
    assert len(figures) == 1
    n_rows = den["depth"].nunique() * den["sigma"].nunique()
    assert f"{n_rows} rows" in texts(at, "markdown")
    assert any(b.proto.label.startswith("Download PNG") for b in at.get("download_button"))
    # the runs behind the rows: one per depth x sigma, all seed-double / l2
    rows = at.dataframe[0].value
    assert len(rows) == n_rows
    chosen = runs.set_index("run_id").loc[rows["run_id"]]
    assert set(chosen["arch"]) == {"seed-double"} and set(chosen["loss"]) == {"l2"}


def test_grid_inpainting_rows_from_url(monkeypatch, sweep_store):
    at = open_page(monkeypatch, sweep_store, "grid", grid_task="inpaint", grid_rows="depth", grid_rows2="region")
    assert_ok(at)
    assert "rows: depth × region" in texts(at, "markdown")
    assert len(at.get("image")) == 1


def test_analysis_shows_per_level_numbers(monkeypatch, sweep_store):
    runs = done_dip(sweep_store)
    want = runs.groupby("arch")["best_psnr"].agg(["size", "mean"])
    at = open_page(monkeypatch, sweep_store, "analysis")
    assert_ok(at)
    effects = at.dataframe[0].value.set_index("arch")
    for level, row in want.iterrows():
        assert effects.loc[level, "n"] == row["size"]
        assert effects.loc[level, "mean"] == pytest.approx(row["mean"], rel=1e-9)
        assert effects.loc[level, "lo"] <= row["mean"] <= effects.loc[level, "hi"]
    assert len(at.get("vega_lite_chart")) >= 2, "error bars and the heatmap"


def test_analysis_paired_comparison_matches_an_independent_computation(monkeypatch, sweep_store):
    from scipy.stats import wilcoxon

    runs = done_dip(sweep_store)
    params = Store(sweep_store).runs().attrs["param_columns"]
    two = runs[runs["arch"].isin(["seed-double", "seed-single"])]
    # match on every other parameter that varies among these runs (missing matches missing)
    text = {c: two[c].astype(object).where(two[c].notna(), "none").astype(str) for c in params}
    keys = [c for c in params if c != "arch" and text[c].nunique() > 1]
    wide = (two.assign(**{c: text[c] for c in keys})
            .pivot_table(index=keys, columns="arch", values="best_psnr", aggfunc="mean")
            .dropna())
    diff = (wide["seed-double"] - wide["seed-single"]).to_numpy()
    assert len(diff) >= 3

    at = open_page(monkeypatch, sweep_store, "analysis", factor="arch", pair_factor="arch",
                   pair_a="seed-double", pair_b="seed-single")
    assert_ok(at)
    m = {x.label: x.value for x in at.metric}
    assert m["matched pairs"] == str(len(diff))
    assert float(m["mean difference A − B"]) == pytest.approx(diff.mean(), abs=5e-4 * max(1, abs(diff.mean())))
    win = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert m["win rate of A"] == f"{win:.0%}"
    assert float(m["Wilcoxon p"]) == pytest.approx(wilcoxon(diff).pvalue, rel=6e-3)


def test_analysis_dip_against_baselines(monkeypatch, sweep_store):
    runs = Store(sweep_store).runs()
    base = runs[(runs["kind"] == "dip-baseline") & (runs["status"] == "done")]
    assert len(base), "the tiny sweep has baselines"
    at = open_page(monkeypatch, sweep_store, "analysis")
    assert_ok(at)
    assert "DIP against the classical baselines" in [s.value for s in at.subheader]
    wide = at.dataframe[-1].value
    for method in base["method"].unique():
        assert method in wide.columns
    assert any(str(c).startswith("dip:") for c in wide.columns)
    # the baseline column holds that method's best_psnr on its setting
    row = base.iloc[0]
    setting = next(s for s in wide.index if f"sigma={row['sigma']:g}" in s)
    assert wide.loc[setting, row["method"]] == pytest.approx(row["best_psnr"])


def test_findings_states_a_verdict_for_every_claim(monkeypatch, sweep_store):
    from priorlab.analysis.findings import CLAIMS

    at = open_page(monkeypatch, sweep_store, "findings")
    assert_ok(at)
    badges = [m.value for m in at.markdown if "-badge[" in str(m.value)]
    assert len(badges) == len(CLAIMS)
    for b in badges:
        assert any(v in b for v in ("supported", "contradicted", "not enough data"))
    shown = texts(at, "markdown")
    for claim in CLAIMS:
        assert f"**{claim.id}**" in shown
    assert len(at.dataframe[0].value) == len(CLAIMS)


# ------------------------------------------------------------------ no heavy imports


def test_dashboard_never_imports_torch_ray_tasks_or_cluster(empty_store):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["PRIORLAB_STORE"] = {str(empty_store)!r}
        from streamlit.testing.v1 import AppTest
        for page in {PAGES!r}:
            at = AppTest.from_file({APP!r}, default_timeout=60)
            at.switch_page(f"views/{{page}}.py")
            at.run()
            assert not at.exception, [e.value for e in at.exception]
        bad = sorted(m for m in sys.modules if (m.split(".")[0] in ("torch", "ray", "torchvision") or m.split(".")[:2] in (["priorlab", "tasks"], ["priorlab", "cluster"])))
        print("BAD", bad)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD []" in out.stdout, out.stdout


# ------------------------------------------------------------------ image helpers


def test_image_helpers_never_crash_on_missing_images():
    from PIL import Image

    from priorlab.dashboard import images

    a = Image.new("RGB", (8, 8), (10, 20, 30))
    b = Image.new("RGB", (8, 8), (14, 20, 30))
    d = images.difference(b, a, gain=2)
    assert d.getpixel((0, 0)) == (8, 0, 0)
    ba = images.before_after(a, b, 0.5)
    assert ba.getpixel((0, 0)) == (10, 20, 30) and ba.getpixel((7, 0)) == (14, 20, 30)
    assert images.decode(None) is None and images.decode(b"not a png") is None
    fig = images.grid_image([("depth=2\nsigma=0.1", [a, None])], ["step 1", "step 2"], cell=32)
    assert fig.width > 64 and fig.height > 32
    assert images.enlarge(a, 64).size == (64, 64)
