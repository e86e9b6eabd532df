"""Compare: two to six runs side by side — images at one step, metric curves, differing parameters.

The runs come from `?runs=id1,id2,...` (the Runs page's "Compare" button sets it); the step,
smoothing and image options are bound to the query string too. Any kind compares: a run with
`output` snapshots (DIP, baselines) shows clean / corrupted / output at the step; a StyleGAN
run shows the images its job stored (`grid`, `strip/<space>/pair<k>`, `grid/<space>`,
`extremes`, …), the kind's usual ones by default and any other picked by name.
"""

from __future__ import annotations

import re

import altair as alt
import numpy as np
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.dashboard import charts, data, frames, images, stopping
from priorlab.dashboard.widgets import EMPTY, dashed, md, number as num, url_runs

MAX_RUNS = 6
DISPLAY_SIDE = 256  # small training images are enlarged (crisp pixels) to at least this


def _prob_space(name: str) -> str | None:
    """The space of a classifier-probability metric drawn as a curve: per image (`prob/z`), per
    interpolation pair or a traversal's mean; a traversal's single latents are left out."""
    if (m := vocab.parse_space_metric(name)) and m[0] == "prob":
        return m[1]
    if (m := vocab.parse_frame_metric(name)) and m[0] == "prob" and not m[2].startswith("latent"):
        return m[1]
    return None


# The x axis of each StyleGAN kind's probability chart: each kind steps through something else,
# so each gets its own chart (one axis held sample indices and interpolation frames at once).
PROB_AXIS = {vocab.SG_SAMPLE: "sample index", vocab.SG_INTERPOLATE: "frame (0 = the first endpoint)",
             vocab.SG_TRAVERSE: "frame (−α_max → +α_max)"}
PROB_OF = {vocab.SG_SAMPLE: "per image", vocab.SG_INTERPOLATE: "per frame, mean over pairs",
           vocab.SG_TRAVERSE: "per frame, mean over latents"}


WHY_NO_PROBS = {vocab.SG_SAMPLE: "a sample run logs a probability per image only with a classifier",
                vocab.SG_DIRECTION: "a direction run stores its SVM accuracy: see the summary metrics below"}


def prob_charts(pm, kind_of: dict[str, str], colors: charts.RunColors, status_of: dict[str, str]) -> None:
    """The classifier's probability logged by StyleGAN runs, one chart per kind: a curve per run
    and space along the frames, and points per sample image (a line between samples means nothing)."""
    pm = pm.assign(space=pm["name"].map(_prob_space)).dropna(subset=["space"])
    if pm.empty:
        # Why, per run: a failed interpolation was told "a direction run stores its SVM accuracy".
        why = [f"{r[:8]} {status_of[r]}: it logged nothing" if status_of.get(r) != vocab.DONE
               else f"{r[:8]}: {WHY_NO_PROBS.get(kind_of[r], 'no classifier probabilities were logged')}"
               for r in kind_of if str(kind_of[r]).startswith("stylegan")]
        st.caption("No per-frame classifier probabilities to plot (" + "; ".join(why) + ").")
        return
    per = pm.groupby(["run_id", "space", "step"], as_index=False)["value"].mean()
    per["run"] = per["run_id"].map(colors.label)
    per["kind"] = per["run_id"].map(kind_of)
    for kind in [k for k in PROB_AXIS if k in set(per["kind"])]:
        part = per[per["kind"] == kind]
        base = alt.Chart(part).encode(
            x=alt.X("step:Q", title=PROB_AXIS[kind], axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title="classifier probability", scale=alt.Scale(domain=[0, 1])),
            color=colors.color(part["run"]),
            tooltip=["run:N", "space:N", alt.Tooltip("step:Q", title=PROB_AXIS[kind]),
                     alt.Tooltip("value:Q", format=".3f")])
        if kind == vocab.SG_SAMPLE:
            chart = base.mark_point(filled=True, size=60).encode(
                shape=alt.Shape("space:N", legend=charts.top_legend("space", dashes=False)))
        else:  # points as a layer of their own: on the line they blanked the dash legend's symbols
            chart = (base.mark_line().encode(strokeDash=alt.StrokeDash("space:N", legend=charts.top_legend("space")))
                     + base.mark_point(filled=True).encode(detail="space:N"))
        st.altair_chart(chart.properties(title=f"{kind}: classifier probability {PROB_OF[kind]}",
                                         height=colors.height(part["run"], top_legend=True)), width="stretch")


st.title("Compare")
st.caption("Two to six runs side by side: images at one training step, metric curves, and only "
           "the parameters that differ.")

d = data.Data()
runs = data.guard(d)
labels = data.labels(d)
known = set(runs["run_id"])

# ------------------------------------------------------------------ which runs (?runs=...)

wanted = url_runs()
unknown = [r for r in wanted if r not in known]
if unknown:
    st.warning("Not in this store: " + md(", ".join(unknown)))
if "cmp_runs" not in st.session_state or st.session_state.get("_cmp_url") != wanted:
    st.session_state["cmp_runs"] = [r for r in wanted if r in known][:MAX_RUNS]
chosen = st.multiselect("Runs", runs["run_id"].tolist(), key="cmp_runs", max_selections=MAX_RUNS,
                        format_func=lambda r: labels.get(r, r),
                        placeholder="pick runs here, or select rows on the Runs page")
if chosen != wanted:
    if chosen:
        st.query_params["runs"] = ",".join(chosen)
    else:
        del st.query_params["runs"]
st.session_state["_cmp_url"] = chosen

if not chosen:
    st.info("Pick two to six runs above, or select them on the **Runs** page and press *Compare*.")
    st.page_link("views/runs.py", label="Go to Runs", icon=":material/table_rows:")
    st.stop()
if len(chosen) == 1:
    st.caption("One run picked: add at least one more to compare.")

sel = runs.set_index("run_id").loc[chosen].reset_index()
params = data.param_columns(runs)
differ = data.varying(sel, params) if len(sel) > 1 else []
short = {r: r[:8] for r in chosen}
if len(set(short.values())) < len(chosen):
    short = {r: r for r in chosen}
# Labels name what differs among runs that both have the parameter (comparing across kinds,
# a parameter only one run has is in the table below, not in every label).
shared = [c for c in differ if sel[c].dropna().map(data.hashable).nunique() > 1]
names = {}
for _, r in sel.iterrows():
    text = data.settings_text(r, shared)
    names[r["run_id"]] = f"{short[r['run_id']]} · {text}" if text else short[r["run_id"]]
if len(set(names.values())) < len(names):
    names = short
colors = charts.RunColors(names)  # one hue per run, the same in every chart on this page

# ------------------------------------------------------------------ images at one step

arts = d.artifacts(chosen)
has_output = set(arts.loc[arts["name"] == "output", "run_id"])
steps = sorted(int(s) for s in arts.loc[arts["name"] == "output", "step"].unique())
st.subheader("Images", anchor=False)
step = None
if steps:
    if len(steps) > 1:
        if st.session_state.get("step") not in steps:
            st.session_state.pop("step", None)
        step = st.select_slider("Step (snapshot)", options=steps, value=steps[-1], key="step",
                                bind="query-params")
    else:
        step = steps[0]
        st.caption(f"One snapshot step: {step}")

# Runs without `output` snapshots (StyleGAN kinds): their stored images by name.
other = [r for r in chosen if r not in has_output]
other_names = sorted(set(arts.loc[arts["run_id"].isin(other), "name"]),
                     key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
picked_names: list[str] = []
if other_names:
    kinds_of = dict(zip(sel["run_id"], sel["kind"]))
    default = [n for n in other_names
               if any(vocab.headline_artifact(kinds_of[r], n) for r in other)]
    default = default or other_names[:3]
    if "cmp_images" in st.session_state and not set(st.session_state["cmp_images"]) <= set(other_names):
        st.session_state.pop("cmp_images")
    picked_names = st.multiselect("Stored images to show (runs without output snapshots)", other_names,
                                  default=default, key="cmp_images", bind="query-params")

opts = st.columns([1, 1, 1, 1])
if has_output:
    show_diff = opts[0].toggle("Difference |output − clean|", key="diff", bind="query-params")
    gain = opts[1].slider("Amplify difference", 1, 10, 4, key="gain", bind="query-params",
                          disabled=not show_diff)
    show_ba = opts[2].toggle("Before / after", key="ba", bind="query-params",
                             help="Corrupted on the left of the split, output on the right")
    split = opts[3].slider("Split (%)", 0, 100, 50, key="split", bind="query-params", disabled=not show_ba)
else:
    show_diff = show_ba = False
    gain, split = 4, 50


def _image(run_id: str, name: str, at: int | None):
    a = data.latest_artifacts(arts[arts["run_id"] == run_id], name, at)
    if a.empty and at is not None:  # nothing at or before the step: the earliest one
        a = data.latest_artifacts(arts[(arts["run_id"] == run_id)], name, None)
    if a.empty:
        return None, None
    row = a.iloc[0]
    return d.image(row["sha256"], (int(row["width"]), int(row["height"]))), int(row["step"])


def run_header(run) -> None:
    st.markdown(f"**{md(short[run['run_id']])}** · {md(run['kind'])} · {md(run['status'])}")
    text = data.settings_text(run, shared)
    if text:
        st.caption(md(text))


def run_error(run) -> None:
    if isinstance(run.get("error"), str) and run["error"]:
        with st.expander("error"):
            st.code(run["error"], language="python")


def snapshots(run, width) -> None:
    """Clean, corrupted and output at the step (and restored, difference, before/after)."""
    rid = run["run_id"]

    def show(img, caption, size=(64, 64)):
        img = img if img is not None else images.placeholder(*size, "missing")
        st.image(images.enlarge(img, DISPLAY_SIDE), caption=caption, width=width)

    clean, _ = _image(rid, "clean", None)
    corrupted, _ = _image(rid, "corrupted", None)
    output, out_step = _image(rid, "output", step)
    ref = next((i for i in (clean, corrupted, output) if i is not None), None)
    size = ref.size if ref is not None else (64, 64)
    if run.get(vocab.REFERENCE) == vocab.NO_REFERENCE:  # a photo with no clean copy: nothing is missing
        st.image(images.enlarge(images.placeholder(*size, "none"), DISPLAY_SIDE), width=width,
                 caption="clean: none given (no reference)")
    elif clean is not None or run["kind"] == "dip":
        show(clean, "clean", size)
    show(corrupted, "corrupted", size)
    if run["kind"] == vocab.DIP_BASELINE:
        # A classical method has no steps and no stop: its output is its answer (stored again
        # as "restored" only so that pages reading a DIP run's answer find it).
        method = run.get("method")
        show(output, "output" + ("" if runframe.missing(method) else f" of {method}")
             + ("" if output is not None else " (none)"), size)
        restored = None
    else:
        show(output, "output" + (f" @ {out_step}" if out_step is not None else " (none)"), size)
        restored, _ = _image(rid, vocab.RESTORED, None)
    if restored is not None:  # the run's answer: the output where its stop detector stopped
        by = run.get(vocab.STOPPED_BY)  # NaN in a frame where other runs have one
        show(restored, f"restored (stopped by {'the last step' if runframe.missing(by) else by})", size)
    if show_diff:
        if output is not None and clean is not None:
            show(images.difference(output, clean, gain), f"|output − clean| × {gain}", size)
        else:
            show(None, "difference (needs clean and output)", size)
    if show_ba:
        if output is not None and corrupted is not None:
            show(images.before_after(corrupted, output, split / 100), f"corrupted | output at {split}%", size)
        else:
            show(None, "before/after (needs corrupted and output)", size)


def stored_images(run) -> None:
    """A run's picked stored images (StyleGAN strips and grids), side by side while they fit,
    each enlarged so that its frames show at a readable size."""
    rid = run["run_id"]
    if run["status"] == vocab.PRUNED and not ((arts["run_id"] == rid) & (arts["name"] == "output")).any():
        # A pruned search run showed its clean and noisy images and no output, with no word why.
        shots = runframe.param_of(run, "snapshots", None)
        first = f" (step {min(shots)})" if isinstance(shots, (list, tuple)) and shots else ""
        st.caption(f"Pruned by the sweep's scheduler before its first output snapshot{first}: no output image.")
    mine = [n for n in picked_names if ((arts["run_id"] == rid) & (arts["name"] == n)).any()]
    if not mine:
        stored = int((arts["run_id"] == rid).sum())
        st.caption("No stored images picked for this run." if stored else
                   ("No images stored yet." if run["status"] in vocab.WAITING else "This run stored no images."))
        return
    side = num(runframe.summary_of(run, "resolution", np.nan))  # the generator's: one frame's side
    with st.container(horizontal=True):
        for n in mine:
            img, _ = _image(rid, n, None)
            img = frames.readable(img, side) if img is not None else images.placeholder(64, 64, "missing")
            st.image(img, caption=md(n), width="content")


# Runs with output snapshots side by side, a column each; the others (StyleGAN) below, a row
# each: their strips hold many frames, which a narrow column shrank to ~30 px.
snap = sel[sel["run_id"].isin(has_output)]
if not snap.empty:
    width = "stretch" if len(snap) > 3 else 240
    for col, (_, run) in zip(st.columns(len(snap)), snap.iterrows()):
        with col:
            run_header(run)
            with st.container(horizontal=len(snap) == 1):  # a lone run: its images in a row, not a tower
                snapshots(run, width)
            run_error(run)
for _, run in sel[~sel["run_id"].isin(has_output)].iterrows():
    run_header(run)
    stored_images(run)
    run_error(run)

# ------------------------------------------------------------------ metric curves

st.subheader("Metric curves", anchor=False)
m = d.metrics(chosen, names=data.CURVE_METRICS)
sg_ids = [r for r in chosen if str(dict(zip(sel["run_id"], sel["kind"]))[r]).startswith("stylegan")]
# A baseline logs each metric once (step 0): a "curve" of one point drew an empty chart whose
# only tick read 0.000000. Its numbers are in the summary table below.
single = not m.empty and bool((m.groupby(["run_id", "name"])["step"].nunique() <= 1).all())
if single:
    st.caption("These runs log each metric once, not per training step: their values are under "
               "Summary metrics below.")
    m = m.iloc[0:0]
if m.empty and not sg_ids and not single:
    st.info("No metric curves recorded for these runs.")
elif not m.empty:
    smooth = st.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="smooth", bind="query-params",
                       help="Exponential moving average over logged steps, as in TensorBoard; 0 = raw")
    m = m.sort_values(["run_id", "name", "step"]).copy()
    m["run"] = m["run_id"].map(colors.label)
    if smooth > 0:
        m["smoothed"] = (m.groupby(["run_id", "name"], sort=False)["value"]
                         .transform(lambda v: v.ewm(alpha=1 - smooth, adjust=True, ignore_na=True).mean()))
    else:
        m["smoothed"] = m["value"]
    present = [n for n in data.CURVE_METRICS if n in set(m["name"])]
    for i, name in enumerate(present):
        if i % 2 == 0:  # a row of two: a taller chart (PSNR's detector legend) leaves no gap below its neighbour
            chart_cols = st.columns(2)
        part = m[m["name"] == name]
        base = alt.Chart(part).encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1)),
            color=colors.color(part["run"]),
        )
        line = base.mark_line(point=bool((part.groupby("run_id")["step"].nunique() <= 1).any())).encode(
            y=alt.Y("smoothed:Q", title=name, scale=alt.Scale(zero=False)),
            tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4g"),
                     alt.Tooltip("smoothed:Q", format=".4g")])
        chart = (base.mark_line(opacity=0.25).encode(y="value:Q") + line) if smooth > 0 else line
        marked = stopping.mark_stops(chart, name, sel, colors)  # detectors' stop steps on the PSNR curve
        height = colors.height(part["run"], top_legend=marked is not chart)
        with chart_cols[i % 2]:
            st.altair_chart(marked.properties(title=name, height=height), width="stretch")
if sg_ids:
    prob_charts(d.metrics(sg_ids), dict(zip(sel["run_id"], sel["kind"])), colors,
                dict(zip(sel["run_id"], sel["status"])))

stopping.render_detector_curves(d, chosen, sel, colors)  # toggle: a detector's statistic beside PSNR

# ------------------------------------------------------------------ parameters and summaries

st.subheader("Parameters that differ", anchor=False)
if len(chosen) < 2:
    st.caption("Pick a second run to see differences.")
elif not differ:
    st.success("These runs have identical parameters.")
else:
    diff = sel.set_index("run_id")[differ].T.map(lambda v: EMPTY if runframe.missing(v) else data.fmt(v))
    diff.columns = [short[r] for r in diff.columns]
    st.dataframe(diff, width="stretch", placeholder=EMPTY)
    same = [c for c in params if c not in differ and sel[c].notna().any()]
    if same:
        st.caption("Same in all: " + md(", ".join(f"{c}={data.fmt(sel[c].iloc[0])}" for c in same)))

summary = data.numeric_summary_columns(sel)
if summary:
    st.subheader("Summary metrics", anchor=False)
    table = sel.set_index("run_id")[summary].T
    table.columns = [short[r] for r in table.columns]
    # A value a run does not have shows as the parameters table's "—" (a NumberColumn wrote "None").
    st.dataframe(dashed(table.astype(float)), width="stretch", placeholder=EMPTY)
