"""Grid: the report's figure layout (Figures 7–17) — rows are settings, columns training steps.

Pick the image and the task, a value for every other factor that varies, and the two factors
whose combinations make the rows (the report uses depth × noise for denoising and depth ×
region for inpainting). Each row is one run; its columns are the output snapshots. The whole
figure downloads as one PNG with row labels.
"""

from __future__ import annotations

from itertools import product

import pandas as pd
import streamlit as st

from dashboard import data, images

ROWS_PER_PAGE = 8
NONE = "(none)"

st.title("Grid")
st.caption("The report's figure layout: one row per setting, one column per training snapshot.")

d = data.Data()
runs = data.guard(d)
params = data.param_columns(runs)

kinds = [k for k in data.levels(runs["kind"]) if k is not None]
kind = "dip" if "dip" in kinds else kinds[0]
if len(kinds) > 1:
    kind = st.segmented_control("Kind", kinds, default=kind, key="grid_kind", bind="query-params",
                                required=True) or kind
pool = runs[(runs["kind"] == kind) & runs["status"].isin(["done", "diverged", "error", "interrupted", "running"])]
if pool.empty:
    st.info(f"No {kind} runs have started yet.")
    st.stop()


def pick(label: str, column: str, frame: pd.DataFrame, key: str, default=None):
    """A bound selectbox over the levels of `column` in `frame` (None when it has none)."""
    if column not in frame.columns:
        return None
    options = data.levels(frame[column])
    if not options:
        return None
    if st.session_state.get(key, object()) not in options:
        st.session_state.pop(key, None)
    index = options.index(default) if default in options else 0
    return st.selectbox(label, options, index=index, format_func=data.fmt, key=key, bind="query-params")


def matches(frame: pd.DataFrame, column: str, value) -> pd.Series:
    return pd.Series(data.is_in(frame[column], [value]), index=frame.index)


top = st.columns(4)
with top[0]:
    image = pick("Image", "image", pool, "grid_image")
sub = pool[matches(pool, "image", image)] if "image" in pool.columns else pool
with top[1]:
    task = pick("Task", "task", sub, "grid_task")
sub = sub[matches(sub, "task", task)] if "task" in sub.columns else sub

factors = [c for c in data.varying(sub, params) if c not in ("image", "task")]
if not factors:
    st.info("Only one run matches this image and task: nothing to lay out in rows.")
    rows_f: list[str] = []
else:
    preferred = ["depth", "region" if task == "inpaint" else "sigma", "arch", "loss"]
    outer_default = next((f for f in preferred if f in factors), factors[0])
    inner_options = [NONE] + factors
    inner_default = next((f for f in preferred if f in factors and f != outer_default), NONE)
    with top[2]:
        if st.session_state.get("grid_rows") not in factors:
            st.session_state.pop("grid_rows", None)
        outer = st.selectbox("Rows: outer factor", factors, index=factors.index(outer_default),
                             key="grid_rows", bind="query-params")
    with top[3]:
        if st.session_state.get("grid_rows2") not in inner_options:
            st.session_state.pop("grid_rows2", None)
        inner = st.selectbox("Rows: inner factor", inner_options, index=inner_options.index(inner_default),
                             key="grid_rows2", bind="query-params")
    rows_f = [outer] + ([inner] if inner not in (NONE, outer) else [])

fixed = [f for f in factors if f not in rows_f]
chosen_fixed: dict = {}
if fixed:
    st.markdown("**Fixed factors**")
    fcols = st.columns(min(len(fixed), 4))
    for i, f in enumerate(fixed):
        with fcols[i % len(fcols)]:
            default = "seed-double" if f == "arch" else ("l2" if f == "loss" else None)
            chosen_fixed[f] = pick(f, f, sub, f"fix_{f}", default)
for f, v in chosen_fixed.items():
    sub = sub[matches(sub, f, v)]

opts = st.columns([2, 2, 3])
with opts[0]:
    inputs = st.multiselect("Leading columns", ["clean", "corrupted"], default=["corrupted"],
                            key="grid_inputs", bind="query-params")
with opts[1]:
    cell = st.select_slider("Cell size (px)", [64, 96, 128, 160, 192, 256], value=128, key="grid_cell",
                            bind="query-params")

# ------------------------------------------------------------------ rows, columns, images

row_levels = list(product(*[data.levels(sub[f]) for f in rows_f])) if rows_f else [()]
row_runs: list[tuple[str, pd.Series | None]] = []
for combo in row_levels:
    m = pd.Series(True, index=sub.index)
    for f, v in zip(rows_f, combo):
        m &= matches(sub, f, v)
    hit = sub[m]
    hit = hit.sort_values("status", key=lambda s: s != "done", kind="stable")
    label = "\n".join(f"{f}={data.fmt(v)}" for f, v in zip(rows_f, combo)) or (hit["run_id"].iloc[0][:8] if len(hit) else "")
    row_runs.append((label, hit.iloc[0] if len(hit) else None))

ids = [r["run_id"] for _, r in row_runs if r is not None]
arts = d.artifacts(ids) if ids else pd.DataFrame(columns=["run_id", "step", "name", "sha256"])
steps = sorted(int(s) for s in arts.loc[arts["name"] == "output", "step"].unique())
if not steps:
    st.info("No output snapshots for these runs yet.")
    st.stop()
col_labels = list(inputs) + [f"step {s}" for s in steps]


def _img(sha) -> "images.Image.Image | None":
    return images.decode(d.png(sha))


def build_rows(selection):
    out = []
    for label, run in selection:
        if run is None:
            out.append((label, [None] * len(col_labels)))
            continue
        a = arts[arts["run_id"] == run["run_id"]]
        cells = []
        for name in inputs:
            hit = a[a["name"] == name]
            cells.append(_img(hit["sha256"].iloc[-1]) if len(hit) else None)
        outs = a[a["name"] == "output"].set_index("step")["sha256"]
        cells += [_img(outs.get(s)) if s in outs.index else None for s in steps]
        out.append((label, cells))
    return out


fixed_txt = ", ".join(f"{f}={data.fmt(v)}" for f, v in chosen_fixed.items())
title = " · ".join(x for x in (data.fmt(image) if image is not None else "", data.fmt(task) if task else "",
                               fixed_txt) if x)
missing = sum(r is None for _, r in row_runs)
st.markdown(f"**{len(row_runs)} rows × {len(col_labels)} columns** — rows: "
            f"{' × '.join(rows_f) or 'one run'}; columns: {', '.join(col_labels)}"
            + (f" · {missing} settings have no run (grey)" if missing else ""))

n_pages = -(-len(row_runs) // ROWS_PER_PAGE)
page = st.pagination(n_pages, key="grid_page", bind="query-params") if n_pages > 1 else 1
shown = row_runs[(page - 1) * ROWS_PER_PAGE: page * ROWS_PER_PAGE]
figure = images.grid_image(build_rows(shown), col_labels, cell=cell, title=title)
st.image(figure, caption=f"{title} (rows {(page - 1) * ROWS_PER_PAGE + 1}–"
                         f"{(page - 1) * ROWS_PER_PAGE + len(shown)} of {len(row_runs)})")


def full_png() -> bytes:
    fig = figure if n_pages == 1 else images.grid_image(build_rows(row_runs), col_labels, cell=cell, title=title)
    return images.png_bytes(fig)


name = "grid-" + "-".join(data.fmt(x) for x in (image, task, *rows_f) if x is not None) + ".png"
st.download_button("Download PNG (all rows)", data=full_png if n_pages > 1 else full_png(), file_name=name,
                   mime="image/png", icon=":material/download:", on_click="ignore")
with st.expander("Runs in this grid"):
    table = pd.DataFrame([{"row": label.replace("\n", ", "), "run_id": r["run_id"] if r is not None else None,
                           "status": r["status"] if r is not None else "no run",
                           "best_psnr": r.get("best_psnr") if r is not None else None}
                          for label, r in row_runs])
    st.dataframe(table, hide_index=True, width="stretch")
