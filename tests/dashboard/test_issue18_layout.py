"""Issue 18 defect 10 (layout) on the session's sweep store, through streamlit.testing: one
colour per run on every Compare chart, run legends wrapped instead of cut, StyleGAN sample
indices and interpolation frames on charts of their own, and one marker ("—") for an empty cell
in every table of the Compare page. What only a browser can measure (legend boxes against the
window, a table's horizontal scroll, the size an image is shown at) is in
tests/e2e/test_dashboard_layout.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from priorlab import vocab
from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, channels, displayed, open_page, specs  # noqa: E402

EMPTY = "—"
LINE_CHARS = 52  # what a legend line may hold in a half-page chart at a 1400 px window


def long_label_runs(store: Path) -> list[str]:
    """Six finished DIP runs that differ in arch, depth, sigma, loss, task and region: their Compare
    labels run to ~70 characters (a legend cut them at 400 px)."""
    runs = Store(store).runs()
    dip = runs[(runs["kind"] == vocab.DIP) & (runs["status"] == vocab.DONE)]
    den = dip[dip["task"] == "denoise"].sort_values(["arch", "depth", "sigma", "loss"])
    inp = dip[dip["task"] == "inpaint"].sort_values(["region", "depth"]).drop_duplicates("region")
    return [*den["run_id"].iloc[[0, 5, 10, 15]], *inp["run_id"].iloc[:2]]


def stylegan_runs(store: Path) -> list[str]:
    runs = Store(store).runs()
    sg = runs[runs["kind"].isin(vocab.STYLEGAN_KINDS) & (runs["status"] == vocab.DONE)]
    return sg.sort_values("kind")["run_id"].tolist()


def with_sample_probabilities(store: Path, into: Path) -> Path:
    """A copy of `store` whose sample run also logged its classifier's probability per image
    (`prob/z`, `prob/w` at step = sample index), as a sample run with a classifier does."""
    shutil.copytree(store, into)
    copy = Store(into)
    runs = copy.runs()
    sample = runs.loc[runs["kind"] == vocab.SG_SAMPLE, "run_id"].iloc[0]
    for i in range(4):
        copy.log_metrics(sample, i, {vocab.space_metric("prob", s): 0.2 * i + 0.1 for s in vocab.LATENT_SPACES})
    return into


def run_colours(spec: dict) -> dict[str, str]:
    """{run label: colour} from the chart's `run` colour channels; a channel without an explicit
    scale gets Vega's default scheme, which colours by sorted label (KeyError: no colour fixed)."""
    out = {}
    for ch in channels(spec, "color"):
        if ch.get("field") == "run":
            scale = ch.get("scale") or {}
            if "domain" not in scale:
                raise KeyError("a run colour channel with Vega's default colours")
            out.update(zip(scale["domain"], scale["range"]))
    return out


def test_every_compare_chart_colours_a_run_alike(monkeypatch, sweep_store):
    ids = long_label_runs(sweep_store)
    at = open_page(monkeypatch, sweep_store, "compare", runs=",".join(ids), cmp_det="true")
    assert_ok(at)
    charts = specs(at)
    assert len(charts) >= 6, "four curves and the detector statistic beside PSNR"
    seen: dict[str, str] = {}
    for spec in charts:
        for run, colour in run_colours(spec).items():
            assert seen.setdefault(run, colour) == colour, f"{run!r} is {colour} here, {seen[run]} above"
    assert len(set(seen.values())) == len(ids), "one hue per run"


def test_run_legends_wrap_their_labels_instead_of_cutting_them(monkeypatch, sweep_store):
    ids = long_label_runs(sweep_store)
    at = open_page(monkeypatch, sweep_store, "compare", runs=",".join(ids))
    assert_ok(at)
    legends = [ch for spec in specs(at) for ch in channels(spec, "color") if ch.get("field") == "run"
               and ch.get("legend")]
    assert legends
    for ch in legends:
        legend, labels = ch["legend"], ch["scale"]["domain"]
        assert max(len(s) for s in labels) > 60 or "\n" in "".join(labels), "these labels are long"
        assert legend.get("labelLimit") == 0, "Vega cuts a label past labelLimit with an ellipsis"
        assert "split(datum.label" in legend.get("labelExpr", ""), "each label drawn as its lines"
        assert all(len(line) <= LINE_CHARS for s in labels for line in s.split("\n")), labels


def test_stylegan_sample_indices_and_interpolation_frames_get_charts_of_their_own(monkeypatch, sweep_store,
                                                                                tmp_path):
    store = with_sample_probabilities(sweep_store, tmp_path / "store")
    at = open_page(monkeypatch, store, "compare", runs=",".join(stylegan_runs(store)))
    assert_ok(at)
    prob = [s for s in specs(at) if "probability" in json.dumps(s.get("title", ""))]
    titles = {json.dumps(s["title"]) for s in prob}
    assert len(prob) == 2, f"one chart per kind (sample, interpolate), got {titles}"
    x_titles = {ch.get("title") for s in prob for ch in channels(s, "x") if ch.get("field") == "step"}
    assert len(x_titles) == 2 and not any("sample" in t and "frame" in t for t in x_titles), x_titles


def test_second_legends_draw_their_symbols_in_grey_not_black(monkeypatch, sweep_store):
    """The space legend (dash pattern, point shape) drew black dots that matched nothing."""
    at = open_page(monkeypatch, sweep_store, "compare", runs=",".join(stylegan_runs(sweep_store)))
    assert_ok(at)
    for spec in specs(at):
        for name in ("strokeDash", "shape"):
            for ch in channels(spec, name):
                legend = ch.get("legend") or {}
                assert legend.get("symbolStrokeColor") or legend.get("symbolFillColor"), (name, legend)
                if name == "strokeDash":
                    assert legend.get("symbolType") == "stroke", "a dash pattern needs a line to show on"


def test_every_empty_cell_on_compare_is_a_dash(monkeypatch, sweep_store):
    """The parameters table said "—" and the summary table beside it "None" for the same thing."""
    ids = stylegan_runs(sweep_store) + long_label_runs(sweep_store)[:1]
    at = open_page(monkeypatch, sweep_store, "compare", runs=",".join(ids))
    assert_ok(at)
    assert len(at.dataframe) >= 2
    cells = pd.concat([displayed(df).astype(str).stack() for df in at.dataframe])
    assert (cells == EMPTY).any(), "these runs have parameters and summaries the others lack"
    assert not cells.isin(["None", "nan", "NaN", "<NA>", ""]).any(), cells[cells.isin(["None", "nan"])].head()


def test_a_dict_parameter_reads_as_words_not_a_python_literal():
    """"Same in all" on Compare printed a classifier's settings as `{'weights': None, ...}`."""
    from priorlab.dashboard import data

    assert data.fmt({"weights": None, "attribute": "smiling", "size": 64.0}) == \
        "(weights: none, attribute: smiling, size: 64)"


def test_a_sampled_float_keeps_six_significant_digits_not_seventeen():
    """A sampled lr filled Compare's run chips and pushed its parameter table past the page
    (`lr=0.0015304122616866657`)."""
    from priorlab.dashboard import data

    assert [data.fmt(v) for v in (0.0015304122616866657, 0.1, 1e-4, 64.0)] == ["0.00153041", "0.1", "0.0001", "64"]
