"""Compare: two to six runs side by side — images at one step, metric curves, differing parameters.

The runs come from `?runs=id1,id2,...` (the Runs page's "Compare" button sets it); the step,
smoothing and image options are bound to the query string too.
"""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, images, stopping
from dashboard.widgets import url_runs

MAX_RUNS = 6
DISPLAY_SIDE = 256  # small training images are enlarged (crisp pixels) to at least this

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
    st.warning(f"Not in this store: {', '.join(unknown)}")
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
names = {r: f"{short[r]} · " + " ".join(f"{c}={data.fmt(v)}" for c, v in zip(differ, vals))
         for r, *vals in sel[["run_id", *differ]].itertuples(index=False)} if differ else short

# ------------------------------------------------------------------ images at one step

arts = d.artifacts(chosen)
steps = sorted(int(s) for s in arts.loc[arts["name"] == "output", "step"].unique())
st.subheader("Images", anchor=False)
if not steps:
    st.info("These runs have no output images yet.")
    step = None
else:
    if len(steps) > 1:
        if st.session_state.get("step") not in steps:
            st.session_state.pop("step", None)
        step = st.select_slider("Step (snapshot)", options=steps, value=steps[-1], key="step",
                                bind="query-params")
    else:
        step = steps[0]
        st.caption(f"One snapshot step: {step}")

opts = st.columns([1, 1, 1, 1])
show_diff = opts[0].toggle("Difference |output − clean|", key="diff", bind="query-params")
gain = opts[1].slider("Amplify difference", 1, 10, 4, key="gain", bind="query-params",
                      disabled=not show_diff)
show_ba = opts[2].toggle("Before / after", key="ba", bind="query-params",
                         help="Corrupted on the left of the split, output on the right")
split = opts[3].slider("Split (%)", 0, 100, 50, key="split", bind="query-params", disabled=not show_ba)


def _image(run_id: str, name: str, at: int | None):
    a = data.latest_artifacts(arts[arts["run_id"] == run_id], name, at)
    if a.empty and at is not None:  # nothing at or before the step: the earliest one
        a = data.latest_artifacts(arts[(arts["run_id"] == run_id)], name, None)
    if a.empty:
        return None, None
    row = a.iloc[0]
    return images.decode(d.png(row["sha256"])), int(row["step"])


img_width = "stretch" if len(chosen) > 3 else 240
cols = st.columns(len(chosen))
for col, (_, run) in zip(cols, sel.iterrows()):
    rid = run["run_id"]
    with col:
        st.markdown(f"**{short[rid]}** · {run['status']}")
        if differ:
            st.caption(" ".join(f"{c}={data.fmt(run[c])}" for c in differ))
        clean, _ = _image(rid, "clean", None)
        corrupted, _ = _image(rid, "corrupted", None)
        output, out_step = _image(rid, "output", step)
        ref = next((i for i in (clean, corrupted, output) if i is not None), None)
        size = ref.size if ref is not None else (64, 64)

        def show(img, caption):
            img = img if img is not None else images.placeholder(*size, "missing")
            st.image(images.enlarge(img, DISPLAY_SIDE), caption=caption, width=img_width)

        show(clean, "clean")
        show(corrupted, "corrupted")
        show(output, "output" + (f" @ {out_step}" if out_step is not None else " (none)"))
        if show_diff:
            if output is not None and clean is not None:
                show(images.difference(output, clean, gain), f"|output − clean| × {gain}")
            else:
                show(None, "difference (needs clean and output)")
        if show_ba:
            if output is not None and corrupted is not None:
                show(images.before_after(corrupted, output, split / 100), f"corrupted | output at {split}%")
            else:
                show(None, "before/after (needs corrupted and output)")
        if isinstance(run.get("error"), str) and run["error"]:
            with st.expander("error"):
                st.code(run["error"], language="python")

# ------------------------------------------------------------------ metric curves

st.subheader("Metric curves", anchor=False)
m = d.metrics(chosen, names=data.CURVE_METRICS)
if m.empty:
    st.info("No metric curves recorded for these runs.")
else:
    smooth = st.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="smooth", bind="query-params",
                       help="Exponential moving average over logged steps, as in TensorBoard; 0 = raw")
    m = m.sort_values(["run_id", "name", "step"]).copy()
    m["run"] = m["run_id"].map(names)
    if smooth > 0:
        m["smoothed"] = (m.groupby(["run_id", "name"], sort=False)["value"]
                         .transform(lambda v: v.ewm(alpha=1 - smooth, adjust=True, ignore_na=True).mean()))
    else:
        m["smoothed"] = m["value"]
    present = [n for n in data.CURVE_METRICS if n in set(m["name"])]
    chart_cols = st.columns(2)
    for i, name in enumerate(present):
        part = m[m["name"] == name]
        base = alt.Chart(part).encode(
            x=alt.X("step:Q", title="step"),
            color=alt.Color("run:N", legend=alt.Legend(orient="bottom", columns=1, title=None, labelLimit=400)),
        )
        line = base.mark_line().encode(
            y=alt.Y("smoothed:Q", title=name, scale=alt.Scale(zero=False)),
            tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4g"),
                     alt.Tooltip("smoothed:Q", format=".4g")])
        chart = (base.mark_line(opacity=0.25).encode(y="value:Q") + line) if smooth > 0 else line
        chart = stopping.mark_stops(chart, name, sel, names)  # detectors' stop steps on the PSNR curve
        with chart_cols[i % 2]:
            # Streamlit fits the whole chart (title, axes, legend) into `height`: leave the
            # plot about 200 px whatever the number of runs in the legend.
            height = 270 + 20 * len(chosen)
            st.altair_chart(chart.properties(title=name, height=height), width="stretch")

stopping.render_detector_curves(d, chosen, sel, names)  # toggle: a detector's statistic beside PSNR

# ------------------------------------------------------------------ parameters and summaries

st.subheader("Parameters that differ", anchor=False)
if len(chosen) < 2:
    st.caption("Pick a second run to see differences.")
elif not differ:
    st.success("These runs have identical parameters.")
else:
    diff = sel.set_index("run_id")[differ].T.map(data.fmt)
    diff.columns = [short[r] for r in diff.columns]
    st.dataframe(diff, width="stretch")
    same = [c for c in params if c not in differ and sel[c].notna().any()]
    if same:
        st.caption("Same in all: " + ", ".join(f"{c}={data.fmt(sel[c].iloc[0])}" for c in same))

summary = data.numeric_summary_columns(sel)
if summary:
    st.subheader("Summary metrics", anchor=False)
    table = sel.set_index("run_id")[summary].T
    table.columns = [short[r] for r in table.columns]
    st.dataframe(table, width="stretch", column_config={short[r]: st.column_config.NumberColumn(format="%.4g")
                                                         for r in chosen})
