"""The dashboard against hostile or broken input, and the issue-9 nits, on small hand-written
stores (the store's own write API, no Ray, a second or two each).

- user strings (run ids from the URL, sweep names, parameter values, error lines) render as
  text, never as Markdown links/emphasis;
- a corrupt or truncated database is one `st.error` line on every page, no traceback;
- an artifact whose bytes no longer match their sha256 is shown as "corrupted";
- the live view polls by default; labels, captions and numbers read well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from apptest_helpers import assert_ok, open_page  # noqa: E402

PAGES = ["sweeps", "runs", "compare", "grid", "analysis", "findings", "stylegan"]
LINK = "[click here](https://example.com)"
# Markdown that would render a link: `[text](url)` with neither bracket escaped.
LIVE_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def texts(at: AppTest) -> list[str]:
    out = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    out += [e.label for e in at.get("expander")]
    out += [img.proto.imgs[0].caption for img in at.get("image")]
    return out


def png(color=(200, 30, 30), size=16) -> bytes:
    from PIL import Image

    from priorlab.dashboard import images

    return images.png_bytes(Image.new("RGB", (size, size), color))


def small_store(root: Path, *, sweep: str = "s", image: str = "astronaut", error: str | None = None,
                summaries: dict | None = None) -> Store:
    """Four finished DIP runs (arch × depth, each with images and curves) and optionally a
    failed one carrying `error`."""
    store = Store(root)
    store.upsert_sweep(sweep, "kind: dip\n", "host", status="done")
    specs = [{"run_id": f"run{i}", "kind": "dip",
              "params": {"image": image, "task": "denoise", "arch": arch, "depth": depth, "sigma": 0.1,
                         "seed": 0}}
             for i, (arch, depth) in enumerate([("skip", 1), ("skip", 2), ("unet", 1), ("unet", 2)])]
    if error is not None:
        specs.append({"run_id": "bad0", "kind": "dip", "params": {"image": image, "arch": "skip", "depth": 3}})
    store.register_runs(sweep, specs)
    for i, spec in enumerate(specs[:4]):
        rid = spec["run_id"]
        store.start_run(rid)
        for step in (10, 20):
            store.log_metrics(rid, step, {"psnr": 10.0 + i + step / 10, "loss": 1.0 / step})
        store.log_artifact(rid, 0, "clean", png((10, 10, 10)))
        store.log_artifact(rid, 0, "corrupted", png((90, 90, 90)))
        store.log_artifact(rid, 20, "output", png((30 + 40 * i, 60, 90)))
        store.finish_run(rid, "done", {"best_psnr": 12.0 + i, **((summaries or {}).get(rid, {}))})
    if error is not None:
        store.start_run("bad0")
        store.finish_run("bad0", "error", error=error)
    return store


# ------------------------------------------------------------------ Markdown never interpreted


def test_run_ids_from_the_url_are_text_not_links(monkeypatch, tmp_path):
    """Issue 8: `/compare?runs=[click here](https://example.com)` rendered a live link."""
    small_store(tmp_path / "s")
    at = open_page(monkeypatch, tmp_path / "s", "compare", runs=LINK)
    assert_ok(at)
    warning = " ".join(str(w.value) for w in at.warning)
    assert "click here" in warning and "example" in warning
    assert not LIVE_LINK.search(warning), warning
    assert "https://" not in warning, "an autolink"


def test_sweep_names_params_and_errors_are_text(monkeypatch, tmp_path):
    name = "**bold** " + LINK
    small_store(tmp_path / "s", sweep=name, image=LINK,
                error="Traceback (most recent call last):\nValueError: see " + LINK)
    for page in ("sweeps", "runs", "compare"):
        query = {"runs": "run0,run1"} if page == "compare" else {}
        at = open_page(monkeypatch, tmp_path / "s", page, **query)
        assert_ok(at)
        for text in texts(at):
            assert not LIVE_LINK.search(text), (page, text)
            assert "**bold**" not in text, (page, text)
    at = open_page(monkeypatch, tmp_path / "s", "sweeps")
    assert any("bold" in s.value for s in at.subheader)
    assert any("ValueError" in e.label for e in at.get("expander"))


def test_md_escapes_every_markdown_construct():
    from priorlab.dashboard.widgets import md

    for raw in (LINK, "**b**", "_i_", "`c`", "<b>x</b>", ":red[x]", ":material/home:", "$x^2$", "# h", "- item",
                "1. item", "https://example.com", "www.example.com", "a@b.org", "a|b"):
        out = md(raw)
        assert not LIVE_LINK.search(out)
        # every Markdown-significant character is backslash-escaped, so the text renders as typed
        assert re.sub(r"\\(.)", r"\1", out).replace("\u2060", "") == raw, (raw, out)
    assert md("seed-double 0.1") == "seed-double 0.1", "plain labels stay readable"


# ------------------------------------------------------------------ broken stores and files


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pages-zeroed"])
def test_corrupt_database_is_one_line_on_every_page(monkeypatch, tmp_path, damage):
    import sqlite3

    root = tmp_path / "s"
    small_store(root).close()
    db = root / "priorlab.db"
    with sqlite3.connect(db) as c:  # everything into the main file, then damage that
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 300)
    elif damage == "truncated":  # a valid header, the rest cut off
        data = db.read_bytes()
        assert len(data) > 4 * 4096
        db.write_bytes(data[: len(data) // 2])
    else:  # header and schema intact (the store opens), the tables' pages zeroed: reads fail later
        data = bytearray(db.read_bytes())
        data[2 * 4096:] = bytes(len(data) - 2 * 4096)
        db.write_bytes(bytes(data))
    for page in PAGES:
        at = open_page(monkeypatch, root, page)
        assert not at.exception, (page, [e.value for e in at.exception])
        errors = [str(e.value) for e in at.error]
        assert len(errors) == 1, (page, errors)
        assert "priorlab.db" in errors[0] or str(root) in errors[0].replace("\\", ""), errors[0]
        assert "\n" not in errors[0] and "Traceback" not in errors[0]


def test_artifact_whose_bytes_changed_is_shown_as_corrupted(monkeypatch, tmp_path):
    from priorlab.dashboard import data, images

    store = small_store(tmp_path / "s")
    arts = store.artifacts(["run0"], ["output"])
    sha = arts["sha256"].iloc[0]
    store.artifact_path(sha).write_bytes(png((0, 255, 0)))  # a fine PNG, but other bytes
    monkeypatch.setenv("PRIORLAB_STORE", str(tmp_path / "s"))
    d = data.Data(str(tmp_path / "s"))
    img = d.image(sha, (16, 16))
    assert img is not None and img.getpixel((2, 2)) == images.PLACEHOLDER_BG, "a 'corrupted' tile, not the image"
    assert d.png(sha) is None
    good = store.artifacts(["run1"], ["output"])["sha256"].iloc[0]
    assert d.image(good).getpixel((2, 2)) == (70, 60, 90), "intact artifacts decode as before"
    assert images.artifact_image(None, sha) is None, "missing stays missing"
    at = open_page(monkeypatch, tmp_path / "s", "compare", runs="run0,run1")
    assert_ok(at)


# ------------------------------------------------------------------ live view


def test_auto_refresh_is_on_without_a_running_sweep(monkeypatch, tmp_path):
    """Issue 9: a sweep started while the dashboard is open only appeared with the toggle on,
    and the toggle defaulted off when no sweep was running."""
    small_store(tmp_path / "s")  # its only sweep is done
    at = open_page(monkeypatch, tmp_path / "s", "sweeps")
    assert_ok(at)
    assert at.toggle(key="auto_refresh").value is True
    # a new sweep written after the first render shows on the next run (the token moved)
    store = Store(tmp_path / "s")
    store.upsert_sweep("later", "kind: dip\n", "host", status="running")
    store.register_runs("later", [{"run_id": "late0", "kind": "dip", "params": {"arch": "skip", "depth": 9}}])
    at.run()
    assert_ok(at)
    assert "later" in [s.value for s in at.subheader]


def test_store_created_after_the_page_opened_appears(monkeypatch, tmp_path):
    at = open_page(monkeypatch, tmp_path / "later", "sweeps")
    assert "No runs yet" in " ".join(texts(at))
    small_store(tmp_path / "later")
    at.run()
    assert_ok(at)
    assert "s" in [s.value for s in at.subheader]


# ------------------------------------------------------------------ Runs, Sweeps, Compare, Analysis nits


def test_runs_not_varied_is_compact_per_kind_and_collapsed(monkeypatch, tmp_path):
    store = small_store(tmp_path / "s")
    store.register_runs("s", [{"run_id": "b0", "kind": "dip-baseline",
                               "params": {"image": "astronaut", "method": m, "sigma": 0.1,
                                          "long": {"k" + str(i): "v" * 20 for i in range(20)}}}
                              for m in ("nlm",)])
    at = open_page(monkeypatch, tmp_path / "s", "runs")
    assert_ok(at)
    exp = [e for e in at.get("expander") if e.label.startswith("Not varied")]
    assert exp and not exp[0].proto.expanded, "collapsed"
    captions = [str(c.value) for c in at.caption]
    assert all(len(c) < 400 for c in captions), max(captions, key=len)
    assert any(c.startswith("**dip**") for c in captions) and any(c.startswith("**dip-baseline**") for c in captions)


def test_runs_table_shows_and_filters_pack_columns(monkeypatch, tmp_path):
    summaries = {"run0": {"pack_id": "p1", "pack_size": 2}, "run1": {"pack_id": "p1", "pack_size": 2},
                 "run2": {"pack_id": "p2", "pack_size": 2}, "run3": {"pack_id": "p2", "pack_size": 2}}
    small_store(tmp_path / "s", summaries=summaries)
    at = open_page(monkeypatch, tmp_path / "s", "runs", pack_id="p1")
    assert_ok(at)
    table = at.dataframe[0].value
    assert {"pack_id", "pack_size"} <= set(table.columns)
    assert sorted(table["run_id"]) == ["run0", "run1"], "filtered on pack_id"
    assert "pack_id" in {w.key for w in at.multiselect}


def test_sweeps_page_shows_the_config_history(monkeypatch, tmp_path):
    store = small_store(tmp_path / "s")
    store.upsert_sweep("s", "kind: dip\ngrid: {depth: [1, 2, 3]}\n", "host", status="done")
    at = open_page(monkeypatch, tmp_path / "s", "sweeps")
    assert_ok(at)
    labels = [e.label for e in at.get("expander")]
    assert any(label.startswith("config history: 2 configs") for label in labels), labels
    codes = [c.value for c in at.code]
    assert "kind: dip" in codes and any("depth: [1, 2, 3]" in c for c in codes)


def test_labels_leave_out_parameters_a_run_does_not_have(monkeypatch, tmp_path):
    from priorlab.dashboard import data

    store = small_store(tmp_path / "s")
    store.register_runs("s", [{"run_id": "base0", "kind": "dip-baseline",
                               "params": {"image": "astronaut", "task": "denoise", "method": "nlm", "sigma": 0.1}}])
    store.start_run("base0")
    store.log_artifact("base0", 0, "output", png((1, 2, 3)))
    store.finish_run("base0", "done", {"best_psnr": 20.0})
    runs = store.runs()
    labels = data.run_labels(runs)
    assert "=none" not in " ".join(labels), labels.tolist()
    at = open_page(monkeypatch, tmp_path / "s", "compare", runs="run0,base0")
    assert_ok(at)
    assert not [t for t in texts(at) if "=none" in t]


def test_compare_curves_use_distinct_hues(monkeypatch, tmp_path):
    import json

    from priorlab.dashboard import data

    small_store(tmp_path / "s")
    at = open_page(monkeypatch, tmp_path / "s", "compare", runs="run0,run1,run2")
    assert_ok(at)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    enc = spec.get("encoding") or spec["layer"][0]["encoding"]
    colors = enc["color"]["scale"]["range"]
    assert colors == data.PALETTE[:3]
    hues = []
    for c in colors:
        r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
        import colorsys

        hues.append(colorsys.rgb_to_hsv(r, g, b)[0] * 360)
    assert min(abs(a - b) % 360 for a in hues for b in hues if a != b) > 30


def test_no_confidence_interval_is_said_in_words(monkeypatch, tmp_path):
    """`95% CI [—, —]` when a paired comparison has no pairs (here arch and depth never match)."""
    store = Store(tmp_path / "s")
    store.upsert_sweep("s", "kind: dip\n", "h", status="done")
    store.register_runs("s", [{"run_id": f"r{i}", "kind": "dip", "params": {"arch": a, "depth": dp}}
                              for i, (a, dp) in enumerate([("skip", 1), ("unet", 2)])])
    for i in range(2):
        store.start_run(f"r{i}")
        store.finish_run(f"r{i}", "done", {"best_psnr": 10.0 + i})
    at = open_page(monkeypatch, tmp_path / "s", "analysis", factor="arch", pair_factor="arch")
    assert_ok(at)
    shown = " ".join(texts(at))
    assert "[—, —]" not in shown
    assert "no confidence interval: no matched pairs" in shown


def test_effect_chart_keeps_every_level_label(monkeypatch, tmp_path):
    import json

    small_store(tmp_path / "s")
    at = open_page(monkeypatch, tmp_path / "s", "analysis", factor="arch")
    assert_ok(at)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    y = (spec.get("encoding") or spec["layer"][0]["encoding"])["y"]
    assert y["axis"]["labelOverlap"] is False, "Vega would hide a level label it thinks overlaps"


def test_iteration_claim_names_budgets_as_integers():
    from priorlab.analysis import findings

    runs = pd.DataFrame({"run_id": ["a", "b"], "kind": ["dip", "dip"], "status": ["done", "done"],
                         "iterations": [300.0, 300.0], "sigma": [0.5, 0.5], "final_psnr": [1.0, 2.0],
                         "arch": ["skip", "skip"]})
    runs.attrs = {"param_columns": ["iterations", "sigma", "arch"], "summary_columns": ["final_psnr"]}
    table = findings.evaluate(runs)
    text = " ".join(str(x) for x in table["explanation"])
    assert "found 300 " in text and "300.0" not in text
