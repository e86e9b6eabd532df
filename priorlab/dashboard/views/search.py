"""Search: one sweep's whole search at a glance, the way trackers show a hyperparameter search.

- parallel coordinates over every axis the sweep varied (sampled ranges on a log axis where the
  config drew them log-uniform), one line per run coloured by the chosen metric; the brush (a
  range per numeric axis, levels per categorical one, a metric range) narrows the lines and is
  the selection the "Select in Runs" button carries to the Runs page;
- parameter importance for the metric by Optuna's evaluators (PED-ANOVA, or fANOVA), with a
  bootstrap 95% interval (PED-ANOVA only: ten fANOVA refits took 10+ s);
- slice plots: the metric against each axis, on a log axis where the range was log-uniform;
- every run's curve at once, grouped by any factor: the group mean and its 95% band.

Numbers come from `priorlab.analysis.overview`; every widget keeps its value in the URL.
"""

from __future__ import annotations

import hashlib
import math

import altair as alt
import pandas as pd
import streamlit as st

from priorlab.analysis import overview
from priorlab import vocab
from priorlab.analysis import choices
from priorlab.dashboard import data
from priorlab.dashboard.widgets import md

MAX_LINES = 2000  # lines drawn in the parallel coordinates (a seeded sample of the brushed runs)
MAX_POINTS = 5000  # points per slice plot
MAX_SELECT = 500  # runs the "Select in Runs" button carries (a link holds their ids)
CURVE_RUNS = 400  # runs whose curves are read for the grouped curves (a seeded sample beyond)
IMPORTANCE_AXIS_PX = 70  # the importance chart's x axis and title, beside 28 px per row
FINAL = list(vocab.SCORED)  # pruned runs carry the summary of what they ran

overview.start_import()  # Optuna's evaluators load while the runs are read and drawn
# Altair validates every chart object as it is built and again when Streamlit serialises the
# chart; building them took ~0.3 s of each rerun here. The final check (to_dict) still runs.
alt.utils.schemapi.disable_debug_mode()

st.title("Search")
st.caption("A whole sweep at a glance: which settings were tried, which mattered, how the runs evolved.")

d = data.Data()
runs = data.guard(d)
# Splitting each run's sweep list took ~0.4 s of every rerun at 10k runs: split the few distinct ones.
memberships = {str(v): str(v).split(",") for v in runs["sweep"].dropna().unique()}
sweeps = sorted({s for names in memberships.values() for s in names if s})
if not sweeps:
    st.info("No sweep in the store yet: this page looks at one sweep's runs.", icon=":material/inbox:")
    st.stop()

top = st.columns([2, 2, 2])
sweep = top[0].selectbox("Sweep", sweeps, key="sr_sweep", bind="query-params")
in_sweep = runs[runs["sweep"].isin([v for v, names in memberships.items() if sweep in names]).to_numpy(bool)]
kinds = sorted(in_sweep["kind"].dropna().unique())
if st.session_state.get("sr_kind") not in kinds:
    st.session_state.pop("sr_kind", None)
kind = top[1].selectbox("Kind", kinds, key="sr_kind", bind="query-params")
scope = data.scoped(in_sweep, kind=kind, statuses=FINAL)
metrics = data.numeric_summary_columns(scope)
if scope.empty or not metrics:
    st.info(md(f"Sweep {sweep} has no finished {kind} runs with numeric results yet."), icon=":material/inbox:")
    st.stop()
default_metric = choices.default_metric(kind, metrics)  # the Analysis page starts from the same one
if st.session_state.get("sr_metric") not in metrics:
    st.session_state.pop("sr_metric", None)
metric = top[2].selectbox("Metric", metrics, index=metrics.index(default_metric), key="sr_metric",
                          bind="query-params")
better = data.higher_is_better(metric)

logs = overview.log_axes(d.sweep_configs(sweep))
axes = overview.search_axes(scope, logs)
n_pruned = int((scope["status"] == "pruned").sum())
st.caption(md(f"Aggregating {len(scope):,} {kind} run{'s' if len(scope) != 1 else ''} of sweep {sweep} ({len(scope) - n_pruned:,} done"
              f"{f', {n_pruned:,} pruned: their numbers are where they were stopped' if n_pruned else ''}); "
              f"{metric}: {'higher' if better else 'lower'} is better"
              + data.without_metric_text(scope, metric) + "."))
if axes.empty:
    st.info(md(f"Sweep {sweep} varies nothing among its {kind} runs: there is no search to look at."),
            icon=":material/info:")
    st.stop()


def _bounds(axis: str, is_log: bool) -> tuple[float, float]:
    x = pd.to_numeric(scope[axis], errors="coerce").dropna().astype(float)
    lo, hi = float(x.min()), float(x.max())
    return (math.log10(lo), math.log10(hi)) if is_log and lo > 0 else (lo, hi)


# ------------------------------------------------------------------ the brush (bound to the URL)

ranges: dict[str, object] = {}
with st.expander("Brush: narrow the runs by any axis or the metric", expanded=False):
    cols = st.columns(3)
    for i, spec in enumerate(axes.itertuples(index=False)):
        with cols[i % 3]:
            key = f"br_{spec.axis}"
            if spec.continuous:
                lo, hi = _bounds(spec.axis, spec.log)
                if key in st.session_state and not (lo <= st.session_state[key][0] <= st.session_state[key][1] <= hi):
                    st.session_state.pop(key)  # a stale range from another sweep
                label = f"log10({spec.axis})" if spec.log else spec.axis
                got = st.slider(label, lo, hi, (lo, hi), key=key, bind="query-params", format="%.4g")
                if got != (lo, hi):
                    ranges[spec.axis] = (10 ** got[0], 10 ** got[1]) if spec.log else got
            else:
                levels = sorted(overview.texts(scope[spec.axis]).unique(), key=str)
                if any(v not in levels for v in st.session_state.get(key, [])):
                    st.session_state.pop(key)
                got = st.multiselect(spec.axis, levels, key=key, bind="query-params", placeholder="all")
                if got:
                    ranges[spec.axis] = got
    m = pd.to_numeric(scope[metric], errors="coerce").dropna()
    if m.max() > m.min():
        key = "br_metric"
        lo, hi = float(m.min()), float(m.max())
        if key in st.session_state and not (lo <= st.session_state[key][0] <= st.session_state[key][1] <= hi):
            st.session_state.pop(key)
        got = st.slider(f"{metric} range", lo, hi, (lo, hi), key=key, bind="query-params", format="%.4g")
        if got != (lo, hi):
            ranges[metric] = got

brushed = scope[overview.brush(scope, ranges)]
ids = brushed["run_id"].tolist()
b = st.columns([3, 2])
b[0].markdown(f"**{len(brushed):,}** of {len(scope):,} runs inside the brush")
if b[1].button(f"Select {min(len(ids), MAX_SELECT)} in Runs", icon=":material/table_rows:", disabled=not ids,
               help=f"Open the Runs page with these runs selected (at most {MAX_SELECT}; brush further for fewer)."):
    st.switch_page("views/runs.py", query_params={"runs": ",".join(ids[:MAX_SELECT])})


# ------------------------------------------------------------------ parallel coordinates

def _digest(ids: pd.Series) -> str:
    """The cache key of a set of runs: Streamlit hashing a tuple of 5,000 ids item by item took
    a few hundred ms of every rerun."""
    return hashlib.blake2b("\n".join(ids).encode(), digest_size=16).hexdigest()


@st.cache_data(ttl=data.TTL_S, max_entries=16, show_spinner=False)
def _parallel(token: tuple, sweep: str, kind: str, metric: str, ids: str, _frame: pd.DataFrame,
              _axes: pd.DataFrame) -> pd.DataFrame:
    return overview.parallel_frame(_frame, _axes, metric)


st.subheader("Parallel coordinates", anchor=False)
# Only runs with the metric: one without (a no-reference photo) drew no line, yet its values
# ("native", "auto") labelled the axes with ticks no line reached.
shown = brushed[pd.to_numeric(brushed[metric], errors="coerce").notna()]
unscored = len(brushed) - len(shown)
if len(shown) > MAX_LINES:
    shown = shown.sample(MAX_LINES, random_state=0)
    st.caption(f"Drawing a seeded sample of {MAX_LINES:,} of the {len(brushed):,} brushed runs.")
pf = _parallel(d.token, sweep, kind, metric, _digest(shown["run_id"]), shown, axes)
scale = alt.Scale(scheme="viridis", reverse=not better)
order = [*axes["axis"], metric]
lines = alt.Chart(pf).mark_line(opacity=0.45, strokeWidth=1.2).encode(
    x=alt.X("axis:N", sort=order, title=None, axis=alt.Axis(labelAngle=0, labelLimit=160)),
    y=alt.Y("pos:Q", axis=None, scale=alt.Scale(domain=[0, 1])),
    color=alt.Color("metric:Q", scale=scale, title=metric, legend=alt.Legend(orient="top", gradientLength=220)),
    detail="run_id:N",
    tooltip=["run_id:N", "axis:N", "value:N", alt.Tooltip("metric:Q", title=metric, format=".4g")],
)
ticks = overview.axis_labels(pf)
labels = alt.Chart(ticks).mark_text(align="left", dx=4, fontSize=10, color="#333").encode(
    x=alt.X("axis:N", sort=order), y="pos:Q", text="value:N")
rules = alt.Chart(pd.DataFrame({"axis": order})).mark_rule(color="#888").encode(x=alt.X("axis:N", sort=order))
st.altair_chart((rules + lines + labels).properties(height=360), width="stretch")
logged = ", ".join(a for a, lg in zip(axes["axis"], axes["log"]) if lg)
st.caption("Each line is a run; each vertical axis spans the values tried"
           + (f" (log scale: {md(logged)})." if logged else ".")
           + (md(f" {unscored} run{'s' if unscored != 1 else ''} without {metric} not drawn.") if unscored else ""))


# ------------------------------------------------------------------ importance

@st.cache_data(ttl=data.TTL_S, max_entries=16, show_spinner=False)
def _importance(token: tuple, sweep: str, kind: str, metric: str, method: str, ids: str,
                _frame: pd.DataFrame, _axes: pd.DataFrame, better: bool) -> pd.DataFrame:
    return overview.importance(_frame, metric, _axes, higher_is_better=better, method=method)


# A fragment: choosing the evaluator reruns this section only, not the charts around it.
@st.fragment
def importance_section(brushed: pd.DataFrame) -> None:
    st.subheader("Which parameter mattered", anchor=False)
    method = st.segmented_control("Evaluator", ["ped-anova", "fanova"], default="ped-anova", key="sr_importance",
                                  bind="query-params",
                                  help="Optuna's importance evaluators: PED-ANOVA (fast, on the best quantile) or "
                                       "fANOVA (a random forest's variance decomposition; slower, no interval).") or "ped-anova"
    with st.spinner("Estimating importance…"):
        imp = _importance(d.token, sweep, kind, metric, method, _digest(brushed["run_id"]), brushed, axes, better)
    if imp.empty:
        st.info("Importance needs at least four runs with the metric inside the brush.", icon=":material/info:")
    else:
        # One explicit row order for both layers: sorting each by its own x (importance, the
        # interval's low end) drew a bar on another axis's row.
        order = imp["axis"].tolist()
        bars = alt.Chart(imp).mark_bar(color="#0072B2").encode(
            y=alt.Y("axis:N", sort=order, title=None), x=alt.X("importance:Q", title=f"share of {metric}'s variation",
                                                                scale=alt.Scale(domain=[0, 1])),
            tooltip=["axis:N", alt.Tooltip("importance:Q", format=".2f"), alt.Tooltip("lo:Q", format=".2f"),
                     alt.Tooltip("hi:Q", format=".2f"), "n:Q"])
        err = alt.Chart(imp.dropna(subset=["lo"])).mark_errorbar(color="#333").encode(  # the same x title, or
            y=alt.Y("axis:N", sort=order), x=alt.X("lo:Q", title=f"share of {metric}'s variation"), x2="hi:Q")  # Vega joins them
        # The height holds the x axis and its title (~60 px) too: 40 px left two rows 9 px each.
        st.altair_chart((bars + err).properties(height=IMPORTANCE_AXIS_PX + 28 * len(imp)), width="stretch")
        top_axis = imp.iloc[0]
        interval = (f"95% interval {top_axis['lo']:.2f}–{top_axis['hi']:.2f}, bootstrap" if top_axis["lo"] == top_axis["lo"]
                    else "no interval: each fANOVA refit takes about a second")
        # Axes as important as the first (to the 2 decimals shown) share the sentence: "sigma explains
        # the largest share (0.50)" stood beside an equal bar for loss.
        tied = imp.loc[(top_axis["importance"] - imp["importance"]).abs() < 0.005, "axis"].tolist()
        who = (f"{top_axis['axis']} explains the largest share" if len(tied) == 1 else
               f"{', '.join(tied[:-1])} and {tied[-1]} explain equal largest shares")
        st.caption(md(f"{who} ({top_axis['importance']:.2f}{' each' if len(tied) > 1 else ''} over "
                      f"{int(top_axis['n'])} runs; {interval})."))


importance_section(brushed)


# ------------------------------------------------------------------ slices

st.subheader("Slices: the metric against each axis", anchor=False)
pts = brushed if len(brushed) <= MAX_POINTS else brushed.sample(MAX_POINTS, random_state=0)
SLICES_PER_ROW = 3


def slice_chart(spec) -> alt.Chart:
    """The metric against one axis; categories keep their whole names (a plug-in's
    `module:function` cut to 100 px was unreadable), tilted when they are long."""
    frame = pd.DataFrame({"x": pts[spec.axis] if spec.continuous else overview.texts(pts[spec.axis]),
                          "y": pd.to_numeric(pts[metric], errors="coerce"), "run_id": pts["run_id"]}).dropna()
    if spec.continuous:
        x = alt.X("x:Q", title=spec.axis + (" (log)" if spec.log else ""), axis=alt.Axis(labelFlush=True),
                  scale=alt.Scale(type="log" if spec.log else "linear", zero=False))  # end labels inside
    else:
        long = frame["x"].astype(str).str.len().max() > 12 if len(frame) else False
        x = alt.X("x:N", title=spec.axis, axis=alt.Axis(labelAngle=-30 if long else 0, labelLimit=0))
    return alt.Chart(frame).mark_circle(size=28, opacity=0.6, color="#0072B2").encode(
        x=x, y=alt.Y("y:Q", title=metric, scale=alt.Scale(zero=False)),
        tooltip=["run_id:N", alt.Tooltip("x", title=spec.axis), alt.Tooltip("y:Q", title=metric, format=".4g")],
    ).properties(height=200)


# One chart per column, each as wide as its column: a fixed-width concatenation of three ran
# past the page's right edge.
specs = list(overview.scored_axes(pts, axes, metric).itertuples(index=False))
for start in range(0, len(specs), SLICES_PER_ROW):
    for col, spec in zip(st.columns(SLICES_PER_ROW), specs[start:start + SLICES_PER_ROW]):
        col.altair_chart(slice_chart(spec), width="stretch")


# ------------------------------------------------------------------ every run's curve

# A fragment: the curve and the grouping rerun this section only.
@st.fragment
def curves_section(brushed: pd.DataFrame) -> None:
    st.subheader("Every run's curve", anchor=False)
    arts_metric = [m for m in data.CURVE_METRICS]
    c = st.columns(3)
    curve = c[0].selectbox("Curve", arts_metric, key="sr_curve", bind="query-params")
    factors = ["(each run)", *axes["axis"]]
    if st.session_state.get("sr_group") not in factors:
        st.session_state.pop("sr_group", None)
    group = c[1].selectbox("Group by", factors, key="sr_group", bind="query-params")
    chosen = brushed if len(brushed) <= CURVE_RUNS else brushed.sample(CURVE_RUNS, random_state=0)
    mets = d.metrics(chosen["run_id"].tolist(), names=[curve])
    if mets.empty:
        st.info(md(f"No {curve} curves stored for these runs."), icon=":material/info:")
    else:
        note = f" (a seeded sample of {CURVE_RUNS} of {len(brushed):,})" if len(brushed) > CURVE_RUNS else ""
        if group == "(each run)":
            mets = mets.assign(metric=mets["run_id"].map(brushed.set_index("run_id")[metric]))
            ch = alt.Chart(mets).mark_line(opacity=0.35, strokeWidth=1).encode(
                x=alt.X("step:Q"), y=alt.Y("value:Q", title=curve, scale=alt.Scale(zero=False)), detail="run_id:N",
                color=alt.Color("metric:Q", scale=scale, title=metric, legend=alt.Legend(orient="top")),
                tooltip=["run_id:N", "step:Q", alt.Tooltip("value:Q", format=".4g")])
            st.altair_chart(ch.properties(height=320), width="stretch")
            st.caption(f"{mets['run_id'].nunique()} runs{note}, coloured by {md(metric)}.")
        else:
            bands = overview.curve_bands(mets, chosen.set_index("run_id")[group])
            col = alt.Color("level:N", title=group, legend=alt.Legend(orient="top", labelLimit=200, columns=6))
            band = alt.Chart(bands).mark_area(opacity=0.2).encode(x="step:Q", y="lo:Q", y2="hi:Q", color=col)
            mean = alt.Chart(bands).mark_line(strokeWidth=2).encode(
                x=alt.X("step:Q"), y=alt.Y("mean:Q", title=f"{curve} (mean, 95% band)", scale=alt.Scale(zero=False)),
                color=col, tooltip=["level:N", "step:Q", alt.Tooltip("mean:Q", format=".4g"), "n:Q"])
            st.altair_chart((band + mean).properties(height=320), width="stretch")
            st.caption(md(f"Mean {curve} per {group} level over {mets['run_id'].nunique()} runs{note}; the band is "
                          "the 95% t-interval of the mean at each step."))


curves_section(brushed)
