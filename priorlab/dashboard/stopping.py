"""Early stopping on the dashboard: the Analysis page's "Stopping" section and the Compare
page's detector marks and detector-statistic toggle.

The numbers are `priorlab.analysis.stopping`'s; detector names come from the runs' columns. Every
control is bound to the query string (`an_stop_by`, `cmp_det`, `cmp_det_name`), so a view
can be shared as a link. The pages call these with one line each.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import stopping
from priorlab.dashboard import charts, data
from priorlab.dashboard.charts import RunColors
from priorlab.dashboard.widgets import EMPTY, bound_select, dashed

NO_SPLIT = "(none)"


def render_analysis_section(runs: pd.DataFrame, kind: str) -> None:
    """Per detector: the gap to the oracle (median, p90, share within 0.5 dB) split by a
    chosen factor, compute saved, and how many runs a scheduler pruned."""
    st.subheader("Stopping", anchor=False)
    mine = runs[runs["kind"] == kind] if "kind" in runs.columns else runs
    n_pruned = int((mine["status"] == vocab.PRUNED).sum()) if "status" in mine.columns else 0
    if n_pruned:
        st.caption(f"{n_pruned} {kind} run{'s' if n_pruned != 1 else ''} pruned by the sweep's scheduler (ASHA): "
                   "stopped early with what they logged, shown as pruned and left out of these statistics.")
    dets = stopping.detectors(mine)
    if not dets:
        st.caption("No finished run carries early-stopping detectors (stop_step_<d> / stop_gap_<d>) yet.")
        return
    factors = [NO_SPLIT, *stopping.split_factors(mine)]
    default = next((f for f in (stopping.SIGMA_SOURCE, "arch") if f in factors), NO_SPLIT)
    by = bound_select("Split by", factors, default, "an_stop_by",
                       help=f"{stopping.SIGMA_SOURCE}: whether the detectors were given the noise level (known) "
                            "or estimated it from the corrupted image (sigma: auto)")
    by = None if by == NO_SPLIT else by
    table = stopping.stop_table(mine, by=by)
    long = stopping.long_stops(mine, by=by)
    if table.empty:
        st.info("No finished run has a detector's stop gap.")
        return
    st.caption(f"Gap = best PSNR (the oracle's, needs the clean image) − PSNR where the detector stops, in dB "
               "(absent for runs a detector ended: their oracle saw only the steps before the stop); "
               f"within {stopping.WITHIN_DB} dB counts as as good as the oracle. Saved = the budget a real stop "
               "there would not spend. Detectors: " + ", ".join(dets))
    # The box plot and the table each get the page's width: side by side the table's p90,
    # within and saved columns were off-screen at a 1400 px window.
    shown = long.dropna(subset=["stop_gap"]).copy()
    enc = {"x": alt.X("stop_gap:Q", title="stop gap (dB)"), "y": alt.Y("detector:N", title=None)}
    if by:
        shown[by] = shown[by].map(data.fmt)
        enc.update(color=alt.Color(f"{by}:N", title=by), yOffset=alt.YOffset(f"{by}:N"))
    box = alt.Chart(shown).mark_boxplot(extent="min-max").encode(**enc)
    rule = (alt.Chart(pd.DataFrame({"x": [stopping.WITHIN_DB]}))
            .mark_rule(strokeDash=[4, 4], color="gray").encode(x="x:Q"))
    height = max(120, 36 * len(dets) * (shown[by].nunique() if by else 1))
    st.altair_chart((box + rule).properties(height=min(height, 600)), width="stretch")
    show = table.drop(columns=["mean_stop_frac"])  # saved = 1 − it: one number for one fact
    if by:
        show[by] = show[by].map(data.fmt)
    # A missing gap (runs with no clean image have no oracle) reads "—", not Streamlit's "None".
    st.dataframe(dashed(show, {"median_gap": "{:.2f}", "p90_gap": "{:.2f}", "share_within": "{:.0%}",
                               "saved": "{:.0%}"}), hide_index=True, width="stretch", column_config={
        "n": st.column_config.Column("n", width="small"),
        "median_gap": st.column_config.Column("median gap (dB)"),
        "p90_gap": st.column_config.Column("p90 gap (dB)"),
        "share_within": st.column_config.Column(f"within {stopping.WITHIN_DB} dB"),
        "saved": st.column_config.Column("budget saved",
                                         help="1 − stop step / iterations: what a real stop would not spend"),
    }, placeholder=EMPTY)
    if show["n"].eq(0).any():
        st.caption("n = 0: runs without a clean image have no oracle to measure a gap against (their "
                   "answer is where the detector stops).")
    real = stopping.saved(mine)
    if not real.empty:
        st.caption("Runs a detector really ended (`--stop`): iterations done against the budget.")
        st.dataframe(dashed(real, {"mean_done_frac": "{:.2f}", "saved": "{:.0%}", "median_gap": "{:.2f}"}),
                     hide_index=True, width="stretch", column_config={
            "mean_done_frac": st.column_config.Column("iterations done / budget"),
            "saved": st.column_config.Column("saved"), "median_gap": st.column_config.Column("median gap (dB)")},
            placeholder=EMPTY)


def mark_stops(chart, name: str, sel: pd.DataFrame, colors: RunColors) -> alt.Chart:
    """The PSNR chart with a dashed rule at each run's stop step per detector (others unchanged).
    The detector legend sits above the plot: beside the run legend below it was cut off."""
    if name != "psnr":
        return chart
    marks = stopping.stop_steps(sel)
    if marks.empty:
        return chart
    marks = marks.assign(run=marks["run_id"].map(colors.label))
    rules = alt.Chart(marks).mark_rule(strokeWidth=1.5, opacity=0.8).encode(
        x=alt.X("stop_step:Q", title="step"), color=colors.color(marks["run"], legend=False),
        strokeDash=alt.StrokeDash("detector:N", legend=charts.top_legend("detector stop")),
        tooltip=["run:N", "detector:N", alt.Tooltip("stop_step:Q", title="stops at")])
    return chart + rules


def render_detector_curves(d, chosen: list[str], sel: pd.DataFrame, colors: RunColors) -> None:
    """A toggle (`?cmp_det=`): one detector's own statistic (`det_<d>`) beside PSNR, each run in
    its colour from the curves above."""
    dets = stopping.detectors(sel)
    logged = d.metrics(chosen, names=None)
    dets = sorted(set(dets) | {d for n in logged["name"].unique() if (d := vocab.parse_detector_metric(n))})
    if not dets:
        return
    on = st.toggle("Detector statistic beside PSNR", key="cmp_det", bind="query-params",
                   help="Plot an early-stopping detector's own statistic next to the PSNR curve, "
                        "its stop steps marked on both")
    if not on:
        return
    det = bound_select("Detector", dets, dets[0], "cmp_det_name")
    det_name = vocab.detector_metric(det)
    m = logged[logged["name"].isin(["psnr", det_name])].copy()
    m["run"] = m["run_id"].map(colors.label)
    marks = stopping.stop_steps(sel)
    marks = marks[marks["detector"] == det].assign(run=lambda x: x["run_id"].map(colors.label))
    cols = st.columns(2)
    for col, metric, title in ((cols[0], "psnr", "psnr"), (cols[1], det_name, f"{det} statistic ({det_name})")):
        part = m[m["name"] == metric]
        with col:
            if part.empty:
                st.caption(f"No {metric} rows logged for these runs"
                           + (" (a run without a clean reference has no psnr: its answer is where the detector "
                              "stops, marked on the right)" if metric == "psnr" else "."))
                continue
            shown = [*part["run"], *marks["run"]]  # one scale for lines and rules: one legend
            line = alt.Chart(part).mark_line().encode(
                x=alt.X("step:Q", title="step"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
                color=colors.color(shown),
                tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4g")])
            rules = alt.Chart(marks).mark_rule(strokeDash=[4, 4]).encode(x=alt.X("stop_step:Q", title="step"),
                                                                         color=colors.color(shown))
            st.altair_chart((line + rules).properties(title=title, height=colors.height(shown)), width="stretch")
