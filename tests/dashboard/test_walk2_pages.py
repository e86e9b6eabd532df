"""Defects the second browser walk (issue 18's store: DIP grids, a random search with ASHA, packed
runs, a plug-in, no-reference runs, every StyleGAN kind) found, each pinned on a small store
written with the store's own API (no Ray, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, channels, displayed, open_page, specs  # noqa: E402

EMPTY = "—"


def x_fields(spec) -> set[str]:
    out = set()

    def walk(node):
        if isinstance(node, dict):
            x = (node.get("encoding") or {}).get("x")
            if isinstance(x, dict) and "field" in x:
                out.add(x["field"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(spec)
    return out


def baseline_store(root: Path) -> Path:
    """Two classical baselines: each logs psnr and ssim once, at step 0, as the real ones do."""
    store = Store(root)
    store.upsert_sweep("b", "kind: dip-baseline\n", "host", status="done")
    store.register_runs("b", [{"run_id": f"base{i}", "kind": "dip-baseline",
                               "params": {"task": "denoise", "image": "astronaut", "sigma": 0.1,
                                          "method": m}} for i, m in enumerate(["nlm", "tv"])])
    for i in range(2):
        store.start_run(f"base{i}")
        store.log_metrics(f"base{i}", 0, {"psnr": 20.0 + i, "ssim": 0.6 + i / 10})
        store.finish_run(f"base{i}", "done", {"best_psnr": 20.0 + i})
    return root


def test_compare_draws_no_empty_curve_for_runs_that_log_one_step(monkeypatch, tmp_path):
    """Compare of two baselines drew two blank 'curves' (one point each, no line) whose only x
    tick read 0.000000."""
    at = open_page(monkeypatch, baseline_store(tmp_path / "s"), "compare", runs="base0,base1")
    assert_ok(at)
    assert not [s for s in specs(at) if "step" in x_fields(s)], "a curve chart of one step per run"
    assert any("once" in c.value and "Summary metrics" in c.value for c in at.caption)


def test_a_baselines_output_is_named_by_its_method_once_without_a_step_or_a_stop(monkeypatch, tmp_path):
    """A baseline's output read "output @ 0" beside the same image again as "restored (stopped by
    the last step)": a classical method has neither steps nor a stop."""
    root = baseline_store(tmp_path / "s")
    store = Store(root)
    for i in range(2):
        store.log_artifacts_many(f"base{i}", [(0, "output", _png((9 * i, 80, 160))),
                                              (0, "restored", _png((9 * i, 80, 160)))])
    at = open_page(monkeypatch, root, "compare", runs="base0,base1")
    assert_ok(at)
    caps = [img.proto.imgs[0].caption for img in at.get("image")]
    assert "output of nlm" in caps and "output of tv" in caps, caps
    assert not [c for c in caps if c.startswith("restored") or "@" in c], caps


def grid_store(root: Path) -> Path:
    """A user's noisy photo (no image, two seeds), a denoise grid and an inpainting pair on the
    astronaut, and one searched run whose sampled lr sorts before the grid's."""
    store = Store(root)
    store.upsert_sweep("g", "kind: dip\n", "host", status="done")
    base = {"image": "astronaut", "task": "denoise", "sigma": 0.1, "lr": 0.01, "depth": 1}
    runs = {"nr0": {"image": None, "reference": "none", "seed": 0}, "nr1": {"image": None, "reference": "none", "seed": 1},
            "d1": {}, "d2": {"depth": 2}, "lr": {"lr": 0.0015304122616866657},
            "i8": {"task": "inpaint", "region": 8}, "i16": {"task": "inpaint", "region": 16}}
    store.register_runs("g", [{"run_id": r, "kind": "dip", "params": {**base, **p}} for r, p in runs.items()])
    for r in runs:
        store.start_run(r)
        store.finish_run(r, "done", {"best_psnr": 20.0})
    return root


def test_grid_opens_on_the_image_with_runs_not_the_no_reference_photo(monkeypatch, tmp_path):
    """The Grid opened on image "none" (the no-reference photo, a 2-row seed grid) because None,
    listed last, was taken for "no default"; a fixed lr opened on another sweep's sampled value."""
    at = open_page(monkeypatch, grid_store(tmp_path / "s"), "grid", grid_kind="dip")
    assert_ok(at)
    assert at.selectbox(key="grid_image").value == "astronaut"
    assert at.selectbox(key="fix_lr").value == 0.01, "the lr most runs share"
    assert "no reference" in " ".join(at.selectbox(key="grid_image").options), "named, not 'none'"


def test_a_grid_link_with_a_task_opens_that_task(monkeypatch, tmp_path):
    """`/grid?grid_task=inpaint` opened a denoise grid: the first image had no inpainting."""
    at = open_page(monkeypatch, grid_store(tmp_path / "s"), "grid", grid_kind="dip", grid_task="inpaint")
    assert_ok(at)
    assert at.selectbox(key="grid_task").value == "inpaint"
    assert at.selectbox(key="grid_rows").value in ("region", "depth")


def one_run_level_store(root: Path) -> Path:
    """Two runs of seed-double and one of seed-single: the lone level has no confidence interval."""
    store = Store(root)
    store.upsert_sweep("d", "kind: dip\n", "host", status="done")
    runs = {"a": ("seed-double", 0.001), "b": ("seed-double", 0.01), "c": ("seed-single", 0.03)}
    store.register_runs("d", [{"run_id": r, "kind": "dip", "params": {"task": "denoise", "image": "astronaut",
                                                                      "arch": arch, "lr": lr}}
                              for r, (arch, lr) in runs.items()])
    for i, r in enumerate(runs):
        store.start_run(r)
        store.finish_run(r, "done", {"best_psnr": 10.0 + i})
    return root


def test_analysis_tables_show_a_missing_interval_as_a_dash_not_none(monkeypatch, tmp_path):
    """A random search left one architecture with one run: Effect and Leaderboard printed its
    interval as `None None`."""
    at = open_page(monkeypatch, one_run_level_store(tmp_path / "s"), "analysis", an_kind="dip", an_factor="arch")
    assert_ok(at)
    assert len(at.dataframe) >= 2
    cells = pd.concat([displayed(df).astype(str).stack() for df in at.dataframe])
    assert (cells == EMPTY).any(), "the lone level's interval"
    assert not cells.isin(["None", "nan", "NaN", "<NA>"]).any(), cells[cells.isin(["None", "nan"])].head()


def photo_and_grid_store(root: Path) -> Path:
    """The walk sweep's DIP runs: two on coffee at two noise levels (scored, with a detector's
    gap) and two on a user's noisy photo (no image, no best_psnr, no gap: only where dp stops)."""
    store = Store(root)
    store.upsert_sweep("w", "kind: dip\n", "host", status="done")
    runs = {"c1": {"image": "coffee", "sigma": 0.1}, "c2": {"image": "coffee", "sigma": 0.2},
            "p0": {"image": None, "sigma": "auto", "seed": 0}, "p1": {"image": None, "sigma": "auto", "seed": 1}}
    store.register_runs("w", [{"run_id": r, "kind": "dip", "params": {"task": "denoise", "iterations": 30, **p}}
                              for r, p in runs.items()])
    for i, r in enumerate(runs):
        store.start_run(r)
        if r.startswith("c"):
            summary = {"best_psnr": 12.0 + i, "reference": "image", "stop_step_dp": 30, "stop_gap_dp": 0.1 * i}
        else:
            summary = {"reference": "none", "sigma_est": 0.1, "stop_step_dp": 20}
        store.finish_run(r, "done", summary)
    return root


def test_analysis_opens_on_a_factor_that_varies_among_scored_runs(monkeypatch, tmp_path):
    """On the walk sweep the page opened on "Effect of image" with one bar (coffee): the no-reference
    runs, which have no best_psnr, made `image` look varied."""
    at = open_page(monkeypatch, photo_and_grid_store(tmp_path / "s"), "analysis", an_kind="dip")
    assert_ok(at)
    factor = at.selectbox(key="factor")
    assert "image" not in factor.options and factor.value == "sigma", factor.options


def test_stopping_table_shows_no_none_for_runs_without_an_oracle(monkeypatch, tmp_path):
    """Its `estimated` rows (no-reference runs: n = 0) read None in three columns."""
    at = open_page(monkeypatch, photo_and_grid_store(tmp_path / "s"), "analysis", an_kind="dip")
    assert_ok(at)
    cells = pd.concat([displayed(df).astype(str).stack() for df in at.dataframe])
    assert (cells == EMPTY).any() and not cells.isin(["None", "nan", "NaN", "<NA>"]).any()


def scored_and_photo_store(root: Path) -> Path:
    """Four coffee runs over sigma × loss (each worth 1 dB) and two runs on a user's noisy photo
    (native size, two seeds, no best_psnr): only the photo's runs vary size and seed."""
    store = Store(root)
    store.upsert_sweep("w", "kind: dip\n", "host", status="done")
    runs = {f"c{s}{l}": {"image": "coffee", "size": 32, "seed": 0, "sigma": s, "loss": l}
            for s in (0.1, 0.2) for l in ("l2", "l1")}
    runs.update({f"p{i}": {"image": None, "size": "native", "sigma": "auto", "seed": i, "loss": "l2"} for i in (0, 1)})
    store.register_runs("w", [{"run_id": r, "kind": "dip", "params": {"task": "denoise", **p}} for r, p in runs.items()])
    for r, p in runs.items():
        store.start_run(r)
        score = {} if r.startswith("p") else {"best_psnr": 12.0 + (p["sigma"] == 0.1) + (p["loss"] == "l2")}
        store.finish_run(r, "done", {**score, "reference": "none" if r.startswith("p") else "image"})
    return root


def test_search_weighs_and_slices_only_axes_the_scored_runs_vary(monkeypatch, tmp_path):
    """The walk sweep's Search page listed size and seed (varied by the no-reference runs only,
    which have no best_psnr) with empty importance bars and one-value slice plots, said
    "log scale: none", and named sigma alone as the most important beside an equal bar for loss."""
    at = open_page(monkeypatch, scored_and_photo_store(tmp_path / "s"), "search", sr_sweep="w", sr_kind="dip")
    assert_ok(at)
    slices = {ch.get("title") for s in specs(at) for ch in channels(s, "x") if ch.get("field") == "x"}
    assert {"sigma", "loss"} <= slices and not {"size", "seed"} & slices, slices
    bars = [a for s in specs(at) if "importance" in json.dumps(s) for ch in channels(s, "y")
            for a in ch.get("sort") or []]  # the importance chart's rows, in their order
    assert bars and not {"size", "seed"} & set(bars), bars
    text = " ".join(str(c.value) for c in at.caption)
    assert "log scale: none" not in text
    assert "explain equal largest shares" in text or "explains the largest share" in text


def test_a_sweep_card_counts_every_way_its_runs_ended(monkeypatch, tmp_path):
    """"6 of 6 runs finished · 3 done · 0 running · 0 pending" on an ASHA search: where are the
    other three? (pruned); the walk sweep's failed run was missing the same way."""
    store = Store(tmp_path / "s")
    store.upsert_sweep("search", "kind: dip\n", "host", status="done")
    store.register_runs("search", [{"run_id": r, "kind": "dip", "params": {"lr": i / 10}} for i, r in enumerate("abc")])
    for r, status in zip("abc", ("done", "pruned", "error")):
        store.start_run(r)
        store.finish_run(r, status, {"best_psnr": 10.0}, error="boom" if status == "error" else None)
    at = open_page(monkeypatch, tmp_path / "s", "sweeps")
    assert_ok(at)
    text = at.get("progress")[0].proto.text
    assert "3 of 3 runs finished" in text and "1 done" in text and "1 pruned" in text and "1 error" in text, text


def test_every_table_on_every_page_writes_a_dash_for_a_missing_value():
    """Streamlit's grid writes "None" for a null cell unless the table names a placeholder; a
    Styler's `na_rep` does not reach it. Every `st.dataframe` of the dashboard passes one."""
    import ast

    root = Path(__file__).resolve().parents[2] / "priorlab" / "dashboard"
    missing = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dataframe"
                    and not any(k.arg == "placeholder" for k in node.keywords)):
                missing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not missing, missing


def test_a_grid_figure_is_as_wide_as_its_title():
    """The Grid's PNG cut its title (image · task · every fixed factor) at the third column."""
    from PIL import Image, ImageDraw

    from priorlab.dashboard import images

    title = "astronaut · denoise · arch=seed-double, loss=l2, lr=0.01, snapshots=[20, 40]"
    fig = images.grid_image([("depth=1", [None, None])], ["corrupted", "step 40"], cell=64, title=title)
    tf = images.font(max(12, 64 // 8))
    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), title, font=tf)
    assert fig.width >= box[2] - box[0], (fig.width, box)


def test_a_list_parameter_reads_as_words_not_a_python_literal():
    """Compare's "Same in all" printed `detectors=['wmv', 'dp', 'rw']`."""
    from priorlab.dashboard import data

    assert data.fmt(["wmv", "dp", "rw"]) == "[wmv, dp, rw]"
    assert data.fmt((20, 40.0)) == "[20, 40]"


def test_stylegan_page_counts_one_pair_in_the_singular(monkeypatch, sweep_store):
    """"Over 1 pairs (frames 0–4) … (1 of 1 pairs flip)" on the session store's one-pair run."""
    at = open_page(monkeypatch, sweep_store, "stylegan")
    assert_ok(at)
    text = " ".join(str(e.value) for e in [*at.markdown, *at.caption])
    assert "Where does the classifier flip?" in text and "Over 1 pair " in text
    assert "1 pairs" not in text, [t for t in text.split(". ") if "1 pairs" in t]


def _png(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(buf, format="PNG")
    return buf.getvalue()


def pruned_and_failed_store(root: Path) -> Path:
    """A search's done run (an output at step 40) and pruned run (pruned at step 10, before its
    snapshot at 40), and a StyleGAN interpolation that failed before logging anything."""
    store = Store(root)
    store.upsert_sweep("s", "kind: dip\n", "host", status="done")
    store.register_runs("s", [{"run_id": r, "kind": "dip", "params": {"lr": lr, "snapshots": [40]}}
                              for r, lr in (("done1", 0.01), ("pruned1", 1e-6))])
    store.register_runs("s", [{"run_id": "sgfail", "kind": "stylegan-interpolate", "params": {"pairs": 1}}])
    for r, status in (("done1", "done"), ("pruned1", "pruned")):
        store.start_run(r)
        store.log_artifact(r, 0, "clean", _png((10, 10, 10)))
        store.log_artifact(r, 0, "corrupted", _png((90, 90, 90)))
        if status == "done":
            store.log_artifact(r, 40, "output", _png((30, 60, 90)))
        store.log_metrics(r, 10, {"psnr": 10.0})
        store.finish_run(r, status, {"best_psnr": 10.0})
    store.start_run("sgfail")
    store.finish_run("sgfail", "error", None, error="RuntimeError: refuse")
    return root


def test_compare_says_why_a_pruned_run_has_no_output(monkeypatch, tmp_path):
    at = open_page(monkeypatch, pruned_and_failed_store(tmp_path / "s"), "compare", runs="done1,pruned1")
    assert_ok(at)
    assert any("Pruned" in c.value and "step 40" in c.value for c in at.caption), [c.value for c in at.caption]


def test_compare_does_not_tell_a_failed_interpolation_it_is_a_direction_run(monkeypatch, tmp_path):
    """A failed stylegan-interpolate run: "The StyleGAN runs here log no per-frame probabilities
    (a direction run stores its SVM accuracy …)"."""
    at = open_page(monkeypatch, pruned_and_failed_store(tmp_path / "s"), "compare", runs="sgfail")
    assert_ok(at)
    text = " ".join(c.value for c in at.caption)
    assert "direction run" not in text and "sgfail error" in text, text


def test_runs_table_keeps_a_sampled_lr_significant_digits(monkeypatch, tmp_path):
    """A random search's lr of 1.60276e-06 read 0.000002 in the Runs table (issue 18 1.2 again)."""
    store = Store(tmp_path / "s")
    store.upsert_sweep("search", "kind: dip\n", "host", status="done")
    lrs = {"a": 1.60276e-06, "b": 2.23323e-05, "c": 0.0116507}
    store.register_runs("search", [{"run_id": r, "kind": "dip", "params": {"lr": lr, "arch": "seed-single"}}
                                   for r, lr in lrs.items()])
    for r in lrs:
        store.start_run(r)
        store.finish_run(r, "done", {"best_psnr": 10.0})
    at = open_page(monkeypatch, tmp_path / "s", "runs", sweep="search")
    assert_ok(at)
    lr = json.loads(at.dataframe[0].proto.columns).get("lr", {})
    assert str(lr.get("type_config", {}).get("format", "")).endswith("g"), lr


def test_a_run_label_leads_with_what_its_own_sweep_varies():
    """Compare's run chips for six runs of a random search all read "… task=denoise image=astronaut
    size=32 sigma=0.1 seed=0 arch=seed-doub…": the store's other axes came first and the cap cut lr."""
    from priorlab.dashboard import data

    grid = [{"run_id": f"g{i}{t}", "kind": "dip", "sweep": "tiny", "task": t, "image": "astronaut", "size": 32,
             "sigma": s, "seed": 0, "arch": "seed-double", "lr": 0.01} for i, s in enumerate((0.1, 0.5))
            for t in ("denoise", "inpaint")]
    search = [{"run_id": f"s{i}", "kind": "dip", "sweep": "search", "task": "denoise", "image": "coffee", "size": 64,
               "sigma": 0.1, "seed": 1, "arch": a, "lr": lr} for i, (a, lr) in enumerate((("seed-double", 0.00153041),
                                                                                        ("seed-single", 2.23323e-05)))]
    runs = pd.DataFrame(grid + search)
    runs.attrs["param_columns"] = ["task", "image", "size", "sigma", "seed", "arch", "lr"]
    labels = data.data_labels(runs)
    assert labels["s0"].split(" · ")[1].startswith(("arch=seed-double lr=0.00153041", "lr=0.00153041")), labels["s0"]
    assert "lr=2.23323e-05" in labels["s1"], labels["s1"]


def test_parallel_coordinates_draw_only_runs_with_the_metric(monkeypatch, tmp_path):
    """The no-reference runs drew no line (no best_psnr) yet put "native" and "auto" ticks on the
    size and sigma axes that no line reached."""
    at = open_page(monkeypatch, scored_and_photo_store(tmp_path / "s"), "search", sr_sweep="w", sr_kind="dip")
    assert_ok(at)
    import pyarrow as pa

    chart = next(c for c in at.get("vega_lite_chart")
                 if any(ch.get("field") == "axis" for ch in channels(json.loads(c.proto.spec), "x")))
    values = {str(v) for ds in chart.proto.datasets
              for v in pa.ipc.open_stream(ds.data.data).read_all().to_pandas().get("value", [])}
    assert {"32", "0.1", "0.2"} <= values and not {"native", "auto"} & values, values
    text = " ".join(str(c.value) for c in at.caption)
    assert "2 runs without best\\_psnr not drawn" in text or "2 runs without best_psnr not drawn" in text, text


def test_stylegan_answers_neither_promise_runs_nor_count_zeros(monkeypatch, tmp_path):
    """On the walk sweep (its interpolation failed) the answers said "No finished interpolation
    runs yet." and counted "0 sample, 0 interpolate, 1 direction, 1 traverse"."""
    store = Store(tmp_path / "s")
    store.upsert_sweep("s", "kind: stylegan-sample\n", "host", status="done")
    store.register_runs("s", [{"run_id": "sg0", "kind": "stylegan-sample", "params": {"generator": "random:16", "n": 4}},
                              {"run_id": "sg1", "kind": "stylegan-interpolate", "params": {"pairs": 1}}])
    store.start_run("sg0")
    store.finish_run("sg0", "done", {"resolution": 16, "z_diversity": 0.3})
    store.start_run("sg1")
    store.finish_run("sg1", "error", None, error="RuntimeError: refuse")
    at = open_page(monkeypatch, tmp_path / "s", "stylegan")
    assert_ok(at)
    text = " ".join(str(e.value) for e in [*at.markdown, *at.caption])
    assert "Where does the classifier flip?" in text and " yet" not in text.split("flip?")[1][:80], text
    assert "1 sample" in text and "0 interpolate" not in text


def test_runs_table_says_a_shared_setting_once_not_as_a_column(monkeypatch, tmp_path):
    """Runs scoped to one sweep showed eight columns with one value each (the second walk): a
    setting every shown run shares is named once above the table; what varies stays a column."""
    store = Store(tmp_path / "s")
    for sweep, arch, size, ids in (("search", "seed-single", 32, (1, 2, 3)), ("grid", "skip", 64, (4, 5))):
        store.upsert_sweep(sweep, "kind: dip\n", "host", status="done")
        store.register_runs(sweep, [{"run_id": f"r{i}", "kind": "dip", "params": {"lr": 10.0 ** -i, "arch": arch,
                                                                                  "size": size}} for i in ids])
        for i in ids:
            store.start_run(f"r{i}")
            store.finish_run(f"r{i}", "done", {"best_psnr": 10.0 + i})
    at = open_page(monkeypatch, tmp_path / "s", "runs", sweep="search")
    assert_ok(at)
    columns = list(at.dataframe[0].value.columns)
    assert "lr" in columns and "arch" not in columns and "size" not in columns, columns
    assert any("Same in all shown runs" in c.value and "arch=seed-single" in c.value and "size=32" in c.value
               for c in at.caption), [c.value for c in at.caption]
