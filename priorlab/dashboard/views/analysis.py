"""Analysis: architectures and settings compared quantitatively.

Effect of one factor (mean and bootstrap 95% CI per level), an interaction heatmap of two
factors, a paired comparison of two levels on runs matched on everything else, a
leaderboard, and DIP against the classical baselines. Only finished (`done`) runs count.
Every choice is bound to the query string.

StyleGAN kinds measure the same thing in two spaces: their summaries `z_<measure>` and
`w_<measure>` (`z_lerp_…`, `z_slerp_…`, `w_lerp_…` for interpolations) are compared side by
side — SVM accuracy per space, flip frame per space, identity (SSIM) at ±alpha — before the
factor analysis, which needs a parameter that varies among the runs.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import choices, runframe
from priorlab.dashboard import computed, data, stopping
from priorlab.dashboard.widgets import (EMPTY, bound_select, dashed, fmt_number, md, number_columns, scope_text,
                                        sweep_scope)

st.title("Analysis")
st.caption("Effects with 95% bootstrap confidence intervals, interactions, matched pairs and a "
           "leaderboard, over finished runs.")

d = data.Data()
runs = data.guard(d)


SPACES = (*vocab.LATENT_SPACES, *vocab.INTERP_SPACES)  # the order the charts show them in
# Per StyleGAN kind: the per-space measures worth a chart first (the rest are in the table).
SG_MEASURES = {
    vocab.SG_DIRECTION: ["val_accuracy", "train_accuracy", "prob_corr"],
    vocab.SG_INTERPOLATE: ["flip_step_mean", "flip_frac_mean", "flip_rate"],
    vocab.SG_TRAVERSE: ["ssim_at_max", "prob_delta", "success_rate", "pixel_dist_at_max"],
    vocab.SG_SAMPLE: ["diversity", "positive_frac", "prob_mean"],
}


def per_space(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Long table `measure, space, n, mean` of the per-space summaries (`vocab.space_key`); per-pair
    flip steps and cross-space ratios are left out."""
    out = []
    for c in columns:
        name = runframe.summary_key(c)
        key = vocab.parse_space_key(name)
        if key is None or vocab.parse_flip_step_key(name) or name == vocab.flips_before_key(key[0]):
            continue
        space, measure = key
        v = pd.to_numeric(frame[c], errors="coerce").dropna()
        if len(v):
            out.append({"measure": measure, "space": space, "n": len(v), "mean": float(v.mean())})
    return pd.DataFrame(out, columns=["measure", "space", "n", "mean"])


def stylegan_spaces(kind: str, scope: pd.DataFrame, metrics: list[str]) -> None:
    """z against w for one StyleGAN kind: a chart of the chosen measure and every measure's table."""
    long = per_space(scope, metrics)
    st.subheader("z against w", anchor=False)
    if long.empty:
        st.info(f"The finished {md(kind)} runs recorded no per-space measures.")
        return
    order = [m for m in SG_MEASURES.get(kind, []) if m in set(long["measure"])]
    measures = order + sorted(set(long["measure"]) - set(order))
    measure = bound_select("Measure", measures, measures[0], "an_sg_measure")
    part = long[long["measure"] == measure]
    spaces = [sp for sp in SPACES if sp in set(part["space"])]
    left, right = st.columns([2, 3])
    with left:
        chart = alt.Chart(part).mark_bar().encode(
            x=alt.X("space:N", sort=spaces, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("mean:Q", title=measure),
            color=alt.Color("space:N", sort=spaces, legend=None, scale=alt.Scale(range=data.PALETTE)),
            tooltip=["space:N", "n:Q", alt.Tooltip("mean:Q", format=".4g")])
        st.altair_chart(chart.properties(height=240), width="stretch")
    with right:
        wide = long.pivot_table(index="measure", columns="space", values="mean", aggfunc="first")
        wide = wide.reindex(index=measures, columns=[sp for sp in SPACES if sp in wide.columns])
        st.dataframe(dashed(wide), width="stretch", placeholder=EMPTY)
    n = len(scope)
    st.caption(f"Mean over {n} finished {md(kind)} run{'s' if n != 1 else ''}; each measure is computed "
               "the same way in each space, so a row compares the spaces directly.")


# ------------------------------------------------------------------ scope, metric, factor

all_sweeps = runframe.sweep_names(runs)
sweeps = sweep_scope(all_sweeps)
if sweeps:
    runs = runs[runframe.in_sweep(runs, sweeps)]
kinds = [k for k in data.levels(runs.loc[runs["status"] == vocab.DONE, "kind"]) if k is not None]
if not kinds:
    st.info("No run has finished yet: the analysis needs runs with status done.")
    st.stop()
c = st.columns([2, 2, 2, 2])
with c[0]:
    kind = bound_select("Kind", kinds, vocab.DIP, "an_kind")
all_tasks = [t for t in data.levels(runs.loc[runs["kind"] == kind, "task"])] if "task" in runs.columns else []
all_tasks = [t for t in all_tasks if t is not None]
tasks: tuple = ()
if len(all_tasks) > 1:
    with c[1]:
        tasks = tuple(st.multiselect("Tasks", all_tasks, key="an_tasks", bind="query-params", placeholder="all tasks"))

scope = computed.scope(d.root, d.token, kind, tasks, sweeps)
metrics = data.numeric_summary_columns(scope)
factors = [f for f in data.varying(scope, data.param_columns(scope))]
if scope.empty or not metrics:
    st.info("No finished runs with summary metrics in this scope yet.")
    st.stop()
if str(kind).startswith("stylegan"):
    stylegan_spaces(kind, scope, metrics)
if not factors:
    n = len(scope)
    st.info(("This is a single run" if n == 1 else f"These {n} finished runs have the same parameters")
            + ": no factor to compare. Sweep a parameter (a `grid:` entry) to compare its levels"
            + (" here; the z-against-w comparison above is what each run measures." if str(kind).startswith("stylegan")
               else "."), icon=":material/info:")
    if kind == vocab.DIP:  # detectors' stops need no varying factor
        stopping.render_analysis_section(runs, kind)
    st.stop()
with c[2]:
    metric = bound_select("Metric", metrics, choices.default_metric(kind, metrics), "metric")
higher = data.higher_is_better(metric)
# Factors among the runs that have the metric: a no-reference photo (no image, no best_psnr) made
# `image` a factor with one level that counts, and the page opened on "Effect of image" (one bar).
factors = data.varying(scope[pd.to_numeric(scope[metric], errors="coerce").notna()], factors)
if not factors:
    st.info(md(f"No parameter varies among the runs with a value of {metric}: no factor to compare."),
            icon=":material/info:")
    if kind == vocab.DIP:
        stopping.render_analysis_section(runs, kind)
    st.stop()
with c[3]:
    factor = bound_select("Factor", factors, choices.default_factor(factors), "factor")
binned = scope.attrs.get("binned", [])
st.caption(md(f"{len(scope):,} finished {kind} runs" + (f" ({', '.join(tasks)})" if tasks else ""))
           + " of " + scope_text(sweeps, len(all_sweeps))
           + md(f" · {'higher' if higher else 'lower'} {metric} is better" + data.without_metric_text(scope, metric))
           + md("".join(f" · {b} binned into {scope[b].nunique()} ranges (it takes "
                        "many values)" for b in binned)))


def ci_text(lo, hi, n_pairs) -> str:
    """`95% CI [lo, hi]`, or why there is none (instead of `[—, —]`)."""
    if fmt_number(lo) == "—" or fmt_number(hi) == "—":
        return "no confidence interval: " + ("no matched pairs" if not n_pairs else "needs two or more matched pairs")
    return f"95% CI [{fmt_number(lo, '+.4g')}, {fmt_number(hi, '+.4g')}]"


# ------------------------------------------------------------------ effect of one factor

st.subheader(f"Effect of {md(factor)}", anchor=False)
eff = computed.effects(d.root, d.token, kind, tasks, sweeps, metric, factor)
if eff.empty:
    st.info(f"No finished runs with a value of {md(metric)}.")
else:
    eff = eff.copy()
    eff["label"] = eff["level"].map(data.fmt)
    left, right = st.columns([3, 2])
    with left:
        # Every level keeps its label (Vega hides "overlapping" ones on a short axis otherwise).
        base = alt.Chart(eff).encode(y=alt.Y("label:N", title=factor, sort=list(eff["label"]),
                                             axis=alt.Axis(labelOverlap=False, labelLimit=0)))
        bars = base.mark_errorbar(ticks=True).encode(x=alt.X("lo:Q", title=f"{metric} (mean, 95% CI)",
                                                             scale=alt.Scale(zero=False)), x2="hi:Q")
        points = base.mark_point(filled=True, size=80).encode(
            x="mean:Q", tooltip=["label:N", "n:Q", alt.Tooltip("mean:Q", format=".4g"),
                                 alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g")])
        st.altair_chart((bars + points).properties(height=max(140, 44 * len(eff))), width="stretch")
    with right:
        table = eff[["label", "n", "mean", "lo", "hi"]].rename(columns={"label": factor})
        st.dataframe(dashed(table, columns=("mean", "lo", "hi")), hide_index=True, width="stretch", placeholder=EMPTY)
    st.caption("Marginal means over everything else that varies; the paired comparison below "
               "answers the matched question.")

# ------------------------------------------------------------------ interaction heatmap

st.subheader("Interaction", anchor=False)
if len(factors) < 2:
    st.caption("Needs two varying factors.")
else:
    ic = st.columns(2)
    with ic[0]:
        f1 = bound_select("Rows", factors, factor, "an_f1")
    others = [f for f in factors if f != f1]
    with ic[1]:
        f2 = bound_select("Columns", others, next((f for f in ("depth", "sigma", "loss") if f in others), others[0]),
                          "an_f2")
    mean, n = computed.interaction(d.root, d.token, kind, tasks, sweeps, metric, f1, f2)
    if mean.empty:
        st.info("No finished runs in these combinations.")
    else:
        long = mean.rename(index=data.fmt, columns=data.fmt).rename_axis(index=f1, columns=f2).stack(
            future_stack=True).rename("mean").reset_index()
        if n is not None and not n.empty:
            nl = n.rename(index=data.fmt, columns=data.fmt).rename_axis(index=f1, columns=f2).stack(
                future_stack=True).rename("n").reset_index()
            long = long.merge(nl, on=[f1, f2], how="left")
        long["text"] = long["mean"].map(lambda v: fmt_number(v, ".2f"))
        heat = alt.Chart(long).encode(
            x=alt.X(f"{f2}:N", sort=list(map(data.fmt, mean.columns)),
                    axis=alt.Axis(labelAngle=0, labelOverlap=False, labelLimit=0)),
            y=alt.Y(f"{f1}:N", sort=list(map(data.fmt, mean.index)), axis=alt.Axis(labelOverlap=False, labelLimit=0)))
        rect = heat.mark_rect().encode(
            color=alt.Color("mean:Q", title=metric, scale=alt.Scale(scheme="viridis", reverse=not higher)),
            tooltip=[f"{f1}:N", f"{f2}:N", alt.Tooltip("mean:Q", format=".4g")]
            + (["n:Q"] if "n" in long.columns else []))
        text = heat.mark_text(fontSize=12).encode(
            text="text:N", color=alt.condition(alt.datum.mean > float(long["mean"].median()),
                                               alt.value("black"), alt.value("white")))
        st.altair_chart((rect + text).properties(height=max(120, 44 * len(mean.index))), width="stretch")


def pair_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The matched pairs to read: both values and their difference first, then only the settings
    that differ between pairs (a column constant over every pair says nothing), the run counts
    only where a side averages several runs, then the run ids."""
    lead = [c for c in ("value_a", "value_b", "diff") if c in pairs.columns]
    ids = [c for c in ("run_id_a", "run_id_b") if c in pairs.columns]
    counts = [c for c in ("n_a", "n_b") if c in pairs.columns]
    multi = [c for c in counts if (pd.to_numeric(pairs[c], errors="coerce") > 1).any()]
    settings = [c for c in pairs.columns if c not in lead + ids + counts and pairs[c].astype(str).nunique() > 1]
    return pairs[lead + settings + multi + ids]

# ------------------------------------------------------------------ paired comparison

st.subheader("Paired comparison", anchor=False)
pc = st.columns(3)
with pc[0]:
    pf = bound_select("Factor", factors, factor, "pair_factor")
lv = [v for v in data.levels(scope[pf]) if v is not None]
if len(lv) < 2:
    st.caption(f"{md(pf)} has one level among these runs.")
else:
    a_default = "seed-double" if "seed-double" in lv else lv[0]
    with pc[1]:
        a = bound_select("Level A", lv, a_default, "pair_a", format_func=data.fmt)
    rest = [v for v in lv if v != a]
    with pc[2]:
        b = bound_select("Level B", rest, "seed-single" if "seed-single" in rest else rest[0], "pair_b",
                         format_func=data.fmt)
    res = computed.paired(d.root, d.token, kind, tasks, sweeps, metric, pf, a, b, higher)
    A, B = data.fmt(a), data.fmt(b)
    mc = st.columns(4)
    mc[0].metric("matched pairs", res.n_pairs)
    # A and B are named in the boxes above: a label holding the levels was cut at 1400 px.
    mc[1].metric("mean difference A − B", fmt_number(res.mean_diff, "+.4g"),
                 help=f"{md(A)} − {md(B)}; bootstrap 95% CI of the mean paired difference below")
    mc[1].caption(ci_text(res.lo, res.hi, res.n_pairs))
    mc[2].metric("win rate of A", "—" if res.n_pairs == 0 else f"{res.win_rate:.0%}",
                 help=f"Share of pairs where {md(A)} is better than {md(B)} (ties count half)")
    mc[3].metric("Wilcoxon p", fmt_number(res.p_value, ".3g"), help="Two-sided signed-rank test; — when undefined")
    on = getattr(res, "matched_on", None)
    notes = []
    if on is not None:
        notes.append("matched on " + (", ".join(on) if on else "nothing (no other factor varies)"))
    for col, why in (getattr(res, "ignored", None) or {}).items():
        notes.append(f"{col} not matched ({why})")
    if getattr(res, "unmatched", 0):
        notes.append(f"{res.unmatched} runs without a partner")
    if notes:
        st.caption(md("; ".join(notes)))
    pairs = res.pairs
    if pairs is not None and not pairs.empty:
        lim = [float(min(pairs["value_a"].min(), pairs["value_b"].min())),
               float(max(pairs["value_a"].max(), pairs["value_b"].max()))]
        with st.columns([2, 3])[0]:
            diag = alt.Chart(pd.DataFrame({"x": lim, "y": lim})).mark_line(color="gray", strokeDash=[4, 4]).encode(
                x="x:Q", y="y:Q")
            pts = alt.Chart(pairs).mark_circle(size=50, opacity=0.7).encode(
                x=alt.X("value_b:Q", title=f"{metric} at {pf}={B}", scale=alt.Scale(domain=lim, zero=False)),
                y=alt.Y("value_a:Q", title=f"{metric} at {pf}={A}", scale=alt.Scale(domain=lim, zero=False)),
                tooltip=[c for c in pairs.columns if c not in ("n_a", "n_b")])
            st.altair_chart((diag + pts).properties(height=300), width="stretch")
        # Below the scatter at the page's width: beside it, half its columns were off-screen.
        table = pair_table(pairs)
        st.dataframe(table, column_config=number_columns(table), hide_index=True, width="stretch",
                     height=min(36 + 35 * len(pairs), 300),
                     placeholder=EMPTY)

# ------------------------------------------------------------------ leaderboard

st.subheader("Leaderboard", anchor=False)
default_by = [f for f in (factor, "depth") if f in factors][:2] or factors[:1]
if "an_by" in st.session_state and not set(st.session_state["an_by"]) <= set(factors):
    st.session_state.pop("an_by")
by = st.multiselect("Group by", factors, default=list(dict.fromkeys(default_by)), key="an_by",
                    bind="query-params")
if by:
    board = computed.leaderboard(d.root, d.token, kind, tasks, sweeps, metric, tuple(by), higher)
    show = board.copy()
    for col in by:
        show[col] = show[col].map(data.fmt)
    st.dataframe(dashed(show, columns=("mean", "lo", "hi")), hide_index=True, width="stretch",
                 height=min(38 + 35 * max(len(show), 1), 420), placeholder=EMPTY)

# ------------------------------------------------------------------ early stopping (dashboard/stopping.py)

if kind == vocab.DIP:  # the detectors are DIP's; other kinds have nothing to stop
    stopping.render_analysis_section(runs, kind)

# ------------------------------------------------------------------ DIP against classical baselines

baselines = runs[(runs["kind"] == vocab.DIP_BASELINE) & (runs["status"] == vocab.DONE)]
if kind == vocab.DIP and not baselines.empty:
    st.subheader("DIP against the classical baselines", anchor=False)
    bmetric = metric if metric in baselines.columns and baselines[metric].notna().any() else "best_psnr"
    vs = computed.dip_vs_baselines(d.root, d.token, bmetric, sweeps)
    if vs.empty:
        st.info("No finished baseline runs share a setting (image, task, sigma, region) with finished DIP runs.")
    else:
        keys = [c for c in vs.columns if c not in ("method", "n", "mean", "best")]
        vs = vs.copy()
        shown_keys = [k for k in keys if vs[k].notna().any() and vs[k].nunique() > 1] or keys[:1]
        vs["setting"] = vs[shown_keys].apply(
            lambda r: " ".join(f"{k}={data.fmt(v)}" for k, v in r.items() if pd.notna(v)), axis=1)
        chart = alt.Chart(vs).mark_bar().encode(
            x=alt.X("mean:Q", title=f"{bmetric} (DIP: mean over runs)", scale=alt.Scale(zero=False)),
            y=alt.Y("method:N", title=None),
            color=alt.Color("method:N", legend=None, scale=alt.Scale(scheme="tableau10")),
            row=alt.Row("setting:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            tooltip=["setting:N", "method:N", "n:Q", alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("best:Q", format=".4g")])
        st.altair_chart(chart.properties(height=22 * vs["method"].nunique()), width="stretch")
        wide = vs.pivot_table(index="setting", columns="method", values="mean", aggfunc="first")
        st.dataframe(dashed(wide, "{:.2f}"), width="stretch", placeholder=EMPTY)
        st.caption("Baselines: one run per method and setting. DIP: the mean (and, in the tooltip, "
                   "the best) over every DIP run of that architecture on the same setting.")
