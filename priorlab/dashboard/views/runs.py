"""Runs: every run in one filterable, sortable table; pick runs to compare; export CSV.

Filters are bound to the query string (`/runs?arch=skip&depth=2&depth=4&sort=best_psnr`), so
a filtered view is a link. The selection is kept in `?runs=id1,id2` and carried to Compare.
Text summaries that group runs (e.g. `pack_id` of runs trained together in one process,
`stopped_by`) are columns and filters like the parameters; numeric ones (`pack_size`) are
metrics with a range filter.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.dashboard import data, images
from priorlab.dashboard.widgets import EMPTY, filter_key, md, url_runs

THUMBS_PER_PAGE = 24
MAX_COMPARE = 6
MAX_LEVELS = 200  # a text summary with more distinct values is a column, not a filter
VALUE_CHARS = 40  # a long value (a dict, a list) in the "not varied" list is cut here
COST_COLUMNS = {  # (format, help) of the resource-use columns (tasks/resources.py measures them)
    vocab.WALL_S: ("%.1f", "seconds the run took"),
    vocab.ITERS_PER_S: ("%.1f", "optimisation steps per second (DIP)"),
    vocab.PEAK_RSS_MB: ("%.0f", "peak resident memory of the run's process while it ran, MiB (a pack's: shared)"),
    vocab.PEAK_GPU_MB: ("%.0f", "peak CUDA memory PyTorch allocated during the run, MiB (GPU runs only)"),
}

st.title("Runs")
st.caption("Filter on any axis or metric range, sort, select rows and compare them.")

d = data.Data()
runs = data.guard(d)
params = data.param_columns(runs)
metrics = data.numeric_summary_columns(runs)
texts = [c for c in data.summary_columns(runs) if c not in metrics and runs[c].notna().any()
         and runs[c].dropna().map(lambda v: isinstance(v, (str, bool))).all() and runs[c].nunique() > 1]

# ------------------------------------------------------------------ filters (bound to the URL)

sweep_names = runframe.sweep_names(runs)
axes = ([c for c in ("kind", "status") if runs[c].nunique() > 1] + data.axes(runs)
        + [c for c in texts if runs[c].nunique() <= MAX_LEVELS])
fixed = [c for c in params if c not in axes and runs[c].notna().any()]


def _short(v) -> str:
    text = data.fmt(v)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "…"


def not_varied() -> dict[str, list[str]]:
    """Per kind, `name=value` of the parameters with one value among that kind's runs."""
    out = {}
    for kind, group in runs.groupby("kind", sort=True):
        items = [f"{c}={_short(group[c].dropna().iloc[0])}" for c in fixed
                 if group[c].notna().any() and group[c].dropna().map(data.hashable).nunique() == 1]
        if items:
            out[str(kind)] = items
    return out

with st.container(border=True):
    st.markdown("**Filters** — an empty filter keeps every value")
    cols = st.columns(4)
    chosen: dict[str, list] = {}
    if len(sweep_names) > 1:
        with cols[0]:
            chosen["sweep"] = st.multiselect("sweep", sweep_names, key="sweep", bind="query-params",
                                             placeholder="all sweeps")
    for i, c in enumerate(axes, start=1 if len(sweep_names) > 1 else 0):
        with cols[i % 4]:
            chosen[c] = st.multiselect(c, data.levels(runs[c]), format_func=data.fmt, key=filter_key(c),
                                       bind="query-params", placeholder="all")
    if fixed:
        per_kind = not_varied()
        with st.expander(f"Not varied: {len(fixed)} parameters with one value per kind"):
            for kind, items in per_kind.items():
                st.caption(f"**{md(kind)}** — " + md(" · ".join(items)))

    ranges: dict[str, tuple[float, float]] = {}
    range_on = st.multiselect("Metric ranges", metrics, key="ranges", bind="query-params",
                              placeholder="add a metric range filter (e.g. best_psnr)")
    if range_on:
        rcols = st.columns(min(len(range_on), 3))
        for i, m in enumerate(range_on):
            vals = runs[m].to_numpy(dtype=float, na_value=np.nan)
            vals = vals[np.isfinite(vals)]
            if vals.size == 0 or vals.min() == vals.max():
                rcols[i % 3].caption(f"{m}: one value only")
                continue
            span = float(vals.max() - vals.min())
            step = 10.0 ** math.floor(math.log10(span / 200))
            lo, hi = math.floor(vals.min() / step) * step, math.ceil(vals.max() / step) * step
            lo, hi = round(lo, 10), round(hi, 10)
            with rcols[i % 3]:
                ranges[m] = st.slider(m, lo, hi, (lo, hi), step=step, key=f"range_{m}", bind="query-params")

    scol = st.columns([2, 1, 3])
    sortable = metrics + params + texts + ["started_at", "finished_at", "status", "run_id"]
    default_sort = "best_psnr" if "best_psnr" in metrics else "started_at"
    if st.session_state.get("sort") not in sortable:
        st.session_state.pop("sort", None)
    sort_by = scol[0].selectbox("Sort by", sortable, index=sortable.index(default_sort), key="sort",
                                bind="query-params")
    descending = scol[1].toggle("Descending", value=sort_by in metrics and data.higher_is_better(sort_by),
                                key="desc", bind="query-params")


def apply_filters(df: pd.DataFrame) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for c, values in chosen.items():
        if not values:
            continue
        if c == "sweep":
            mask &= runframe.in_sweep(df, values).to_numpy(bool)
            continue
        mask &= data.is_in(df[c], values)
    for m, (lo, hi) in ranges.items():
        v = df[m].to_numpy(dtype=float, na_value=np.nan)
        full_lo, full_hi = np.nanmin(v) if np.isfinite(v).any() else lo, np.nanmax(v) if np.isfinite(v).any() else hi
        if lo <= full_lo and hi >= full_hi:
            continue  # the full range: keep runs without the metric too
        mask &= (v >= lo - 1e-12) & (v <= hi + 1e-12)
    out = df[mask]
    by = sort_by if sort_by in out.columns else "run_id"
    return out.sort_values(by, ascending=not descending, na_position="last", kind="stable")


# ------------------------------------------------------------------ the live table


@st.fragment
def table() -> None:
    dd = data.Data()
    all_runs = dd.runs() if dd.token != d.token else runs
    shown = apply_filters(all_runs).reset_index(drop=True)
    st.markdown(f"**{len(shown):,}** of {len(all_runs):,} runs")

    lead = [sort_by] if sort_by in metrics else []
    # What each run cost sits beside its settings, not among dozens of result columns.
    cost = [c for c in vocab.RESOURCE_KEYS if c in metrics]
    columns = (["run_id", "status", "kind"] + lead + [c for c in axes if c not in ("kind", "status")]
               + cost + metrics + texts + ["sweep", "node", "started_at", "finished_at"])
    columns = [c for c in dict.fromkeys(columns) if c in shown.columns]
    if len(shown):  # a column blank for every shown run (another kind's, another sweep's) is noise
        columns = [c for c in columns if c in ("run_id", "status", "kind", "sweep") or shown[c].notna().any()]
    # A setting every shown run shares is said once above the table, as `priorlab runs` does:
    # one sweep's fixed values were eight identical columns (the second walk). A column the user
    # filters on stays.
    same = {c: shown[c].iloc[0] for c in axes if c in columns and c not in ("kind", "status") + tuple(lead)
            and not chosen.get(c) and len(shown) > 1 and shown[c].notna().all() and shown[c].astype(str).nunique() == 1}
    columns = [c for c in columns if c not in same]
    if same:
        st.caption("Same in all shown runs: " + ", ".join(f"{c}={data.fmt(v)}" for c, v in same.items()))
    config = {m: st.column_config.NumberColumn(m, format="%.4g") for m in metrics}
    # A sampled lr of 1.6e-06 read 0.000002 in Streamlit's default format: float settings keep
    # their significant digits too.
    config.update({c: st.column_config.NumberColumn(c, format="%.6g") for c in axes
                   if c in shown.columns and shown[c].dtype.kind == "f"})
    config.update({c: st.column_config.NumberColumn(c, format=fmt, help=text) for c, (fmt, text) in COST_COLUMNS.items()
                   if c in cost})
    config["run_id"] = st.column_config.TextColumn("run_id", width="small")
    config["status"] = st.column_config.TextColumn("status", width="small")

    wanted = url_runs()
    default = None
    if wanted and "runs_table" not in st.session_state:
        pos = np.flatnonzero(shown["run_id"].isin(wanted).to_numpy())
        default = {"selection": {"rows": pos.tolist()}}
    event = st.dataframe(shown[columns], hide_index=True, key="runs_table", on_select="rerun",
                         selection_mode="multi-row", selection_default=default, column_config=config, placeholder=EMPTY,
                         height=min(36 + 35 * max(len(shown), 1), 560), width="stretch")
    rows = [r for r in event.selection.rows if r < len(shown)]
    selected = shown["run_id"].iloc[rows].tolist()
    if set(selected) == set(wanted):
        selected = wanted  # keep the order of the link
    if selected:
        if st.query_params.get("runs") != ",".join(selected):
            st.query_params["runs"] = ",".join(selected)
    elif "runs" in st.query_params:
        del st.query_params["runs"]

    b = st.columns([2, 2, 3])
    n = len(selected)
    help_ = "Select two to six rows in the table (tick the boxes on the left)."
    if b[0].button(f"Compare {n} selected" if n else "Compare selected", type="primary",
                   disabled=not 2 <= n <= MAX_COMPARE, help=help_, icon=":material/compare:"):
        st.switch_page("views/compare.py", query_params={"runs": ",".join(selected)})
    if n > MAX_COMPARE:
        b[2].warning(f"{n} runs selected: Compare takes at most {MAX_COMPARE}.")
    export = shown.drop(columns=[c for c in ("error",) if c in shown.columns])
    b[1].download_button("Download CSV", data=lambda: export.to_csv(index=False).encode(),
                         file_name="runs.csv", mime="text/csv", icon=":material/download:",
                         on_click="ignore")
    thumbnails(dd, shown)


def thumbnails(dd: data.Data, shown: pd.DataFrame) -> None:
    if not st.toggle("Show output thumbnails", key="thumbs", bind="query-params"):
        return
    n_pages = max(1, -(-len(shown) // THUMBS_PER_PAGE))
    page = st.pagination(n_pages, key="thumb_page", bind="query-params") if n_pages > 1 else 1
    part = shown.iloc[(page - 1) * THUMBS_PER_PAGE: page * THUMBS_PER_PAGE]
    arts = dd.artifacts(part["run_id"].tolist(), names=["output"])
    latest = data.latest_artifacts(arts, "output")
    labels = data.run_labels(part, [c for c in axes if c not in ("kind", "status")][:4])
    imgs, caps = [], []
    for rid in part["run_id"]:
        sha = latest["sha256"].get(rid) if not latest.empty else None
        img = dd.image(sha, (96, 96))
        imgs.append(images.thumbnail(img, 96) if img is not None else images.placeholder(96, 96, "no image"))
        caps.append(md(labels.get(rid, rid[:8])))
    st.image(imgs, caption=caps, width=96)


table()
