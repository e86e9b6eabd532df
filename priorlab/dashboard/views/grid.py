"""Grid: the report's figure layout — one row per setting, one column per frame.

DIP and the baselines (Figures 7–17): pick the image and the task, a value for every other
factor that varies, and the two factors whose combinations make the rows (the report uses
depth × noise for denoising and depth × region for inpainting). Each row is one run; its
columns are the output snapshots.

StyleGAN kinds, one finished run at a time: samples have a z row and a w row of images
(Figure 20); interpolations one row per pair and space, a column per frame (Figures 18–19);
traversals one row per latent and space, a column per alpha (Figures 21–22). Direction runs
store no grid (their SVM accuracy is on the StyleGAN and Analysis pages), so they are not
offered here. Every figure downloads as one PNG with row labels.
"""

from __future__ import annotations

from itertools import product

import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.dashboard import data, images, strips
from priorlab.dashboard.widgets import EMPTY, keep, md, restore, url_pick

ROWS_PER_PAGE = 8
NONE = "(none)"
DIP_KINDS = vocab.DIP_KINDS
SG_KINDS = tuple(k for k in vocab.STYLEGAN_KINDS if k != vocab.SG_DIRECTION)
NOT_OFFERED = {vocab.SG_DIRECTION: "direction runs store no image grid (their SVM accuracy is on the "
                                     "StyleGAN and Analysis pages)"}

st.title("Grid")
st.caption("The report's figure layout: one row per setting, one column per training snapshot "
           "(StyleGAN: per sample, frame or alpha).")

d = data.Data()
runs = data.guard(d)
params = data.param_columns(runs)

present = [k for k in data.levels(runs["kind"]) if k is not None]
kinds = [k for k in present if k not in NOT_OFFERED]
skipped = [k for k in present if k in NOT_OFFERED]
if skipped:
    st.caption("Not offered here: " + "; ".join(f"{md(k)}: {NOT_OFFERED[k]}" for k in skipped) + ".")
if not kinds:
    st.info("No runs with an image grid in this store.")
    st.stop()
kind = vocab.DIP if vocab.DIP in kinds else kinds[0]
if len(kinds) > 1:
    if st.session_state.get("grid_kind", kind) not in kinds:
        st.session_state.pop("grid_kind", None)
    kind = st.segmented_control("Kind", kinds, default=kind, key="grid_kind", bind="query-params",
                                required=True) or kind
pool = runs[(runs["kind"] == kind) & runs["status"].isin([*vocab.COMPLETED, *vocab.FAILED, vocab.RUNNING])]
if pool.empty:
    st.info(f"No {md(kind)} runs have started yet.")
    st.stop()


def render(row_runs: list, col_labels: list[str], build_rows, title: str, file_name: str,
           rows_text: str, cell: int, per_page: int = ROWS_PER_PAGE) -> None:
    """The figure (paged by ROWS_PER_PAGE rows), its one-PNG download with every row, and the
    runs behind it. `row_runs`: (label, run or None, extra) per row; `build_rows(selection)`
    turns some of them into `(label, images)` for `images.grid_image`."""
    missing = sum(r is None for _, r, _ in row_runs)
    st.markdown(f"**{len(row_runs)} rows × {len(col_labels)} columns** — rows: {md(rows_text)}; "
                f"columns: {md(', '.join(col_labels) if len(col_labels) <= 12 else f'{col_labels[0]} … {col_labels[-1]}')}"
                + (f" · {missing} settings have no run (grey)" if missing else ""))
    n_pages = -(-len(row_runs) // per_page)
    page = st.pagination(n_pages, key="grid_page", bind="query-params") if n_pages > 1 else 1
    shown = row_runs[(page - 1) * per_page: page * per_page]
    figure = images.grid_image(build_rows(shown), col_labels, cell=cell, title=title)
    st.image(figure, caption=md(f"{title} (rows {(page - 1) * per_page + 1}–"
                                f"{(page - 1) * per_page + len(shown)} of {len(row_runs)})"))

    def full_png() -> bytes:
        fig = figure if n_pages == 1 else images.grid_image(build_rows(row_runs), col_labels, cell=cell, title=title)
        return images.png_bytes(fig)

    st.download_button("Download PNG (all rows)", data=full_png if n_pages > 1 else full_png(), file_name=file_name,
                       mime="image/png", icon=":material/download:", on_click="ignore")
    with st.expander("Runs in this grid"):
        table = pd.DataFrame([{"row": label.replace("\n", ", "), "run_id": r["run_id"] if r is not None else None,
                               "status": r["status"] if r is not None else "no run",
                               "best_psnr": r.get("best_psnr") if r is not None else None}
                              for label, r, _ in row_runs])
        st.dataframe(table.dropna(axis=1, how="all"), hide_index=True, width="stretch", placeholder=EMPTY)


def frames(sha: str | None, size: tuple[int, int], cols: int, rows: int = 1) -> list[list]:
    """The `rows` × `cols` frames of a stored StyleGAN strip or grid; missing frames are None and
    a file whose bytes do not match their hash gives "corrupted" tiles."""
    img = d.image(sha, size) if sha else None
    cut = strips.cut(img, cols, rows)
    if cut is not None:
        return cut
    if img is not None and d.png(sha) is None:  # the hash check failed
        tile = images.placeholder(64, 64, "corrupted")
        return [[tile] * cols for _ in range(rows)]
    return [[None] * cols for _ in range(rows)]


def sha_of(arts: pd.DataFrame, name: str) -> tuple[str | None, tuple[int, int]]:
    a = arts[arts["name"] == name].sort_values("step")
    if a.empty:
        return None, (64, 64)
    row = a.iloc[-1]
    return str(row["sha256"]), (int(row["width"]), int(row["height"]))


def stylegan_grid() -> None:
    """One finished StyleGAN run laid out as the report's figure for its kind."""
    done = pool[pool["status"] == "done"].sort_values("finished_at", ascending=False, na_position="last")
    if done.empty:
        st.info(f"No finished {md(kind)} run yet ({len(pool)} started).")
        st.stop()
    labels = data.labels(d)
    ids = done["run_id"].tolist()
    top = st.columns([3, 1])
    with top[0]:
        rid = url_pick("Run", ids, "grid_run", labels) if len(ids) > 1 else ids[0]
        if len(ids) == 1:
            st.caption("Run " + md(labels.get(rid, rid)))
    with top[1]:
        cell = st.select_slider("Cell size (px)", [48, 64, 96, 128, 160], value=96, key="grid_sg_cell",
                                bind="query-params")
    run = done[done["run_id"] == rid].iloc[0]
    arts = d.artifacts([rid])
    m = d.metrics([rid])

    def run_int(col: str, default: int) -> int:
        return int(runframe.param_of(run, col, runframe.summary_of(run, col, default)))

    per_page = ROWS_PER_PAGE
    rows: list = []  # (label, run, (artifact name, frame row, frames per row, rows in the image))
    parsed = [(n, *vocab.parse_artifact(n)) for n in arts["name"]]  # (name, what, space, who)
    if kind == vocab.SG_SAMPLE:
        n = run_int("n", 0)
        rows = [(s, run, (vocab.samples_artifact(s), 0, n, 1)) for s in vocab.LATENT_SPACES]
        col_labels = [f"sample {k}" for k in range(n)]
        rows_text = "z (G(z), z ~ N(0, I)), w (style vectors fed to synthesis)"
    elif kind == vocab.SG_INTERPOLATE:
        label_steps = m.loc[m["name"].map(lambda n: (vocab.parse_frame_metric(n) or ("",))[0] == "label"), "step"]
        k = int(label_steps.max() + 1) if len(label_steps) else run_int("steps", 0)
        strips_ = [(space, w[1]) for _, what, space, who in parsed
                   if what == "strip" and (w := vocab.parse_who(who)) and w[0] == "pair"]
        spaces = [s for s in vocab.INTERP_SPACES if s in {s for s, _ in strips_}]
        pairs = sorted({p for _, p in strips_})
        rows = [(f"pair {p}\n{s}", run, (vocab.strip_artifact(s, vocab.pair(p)), 0, k, 1)) for p in pairs for s in spaces]
        col_labels = [f"t={i / max(k - 1, 1):.2f}" for i in range(k)]
        rows_text = "pair × space"
        per_page = max(len(spaces), 1) * max(ROWS_PER_PAGE // max(len(spaces), 1), 1)
    else:  # stylegan-traverse
        alpha = m[m["name"] == "alpha"].set_index("step")["value"].sort_index()
        k = len(alpha) or run_int("steps", 0)
        stored = {space for _, what, space, _ in parsed if what in ("strip", vocab.GRID)}
        spaces = [s for s in vocab.LATENT_SPACES if s in stored]
        n_strips = sum(1 for _, what, _, who in parsed if what == "strip" and (vocab.parse_who(who) or ("",))[0] == "latent")
        n_lat = run_int("n_latents", 0) or n_strips // max(len(spaces), 1)
        rows = [(f"latent {i}\n{s}", run, (vocab.strip_artifact(s, vocab.latent(i)), 0, k, 1))
                for s in spaces for i in range(n_lat)]
        col_labels = [f"a={a:+.2g}" for a in alpha] if len(alpha) else [f"frame {i}" for i in range(k)]
        rows_text = "space × latent"
        grids = {s: sha_of(arts, vocab.grid_artifact(s)) for s in spaces}
    if not rows or not col_labels:
        st.info("This run stored no frames to lay out.")
        st.stop()

    def build_rows(selection):
        out = []
        for label, _, (name, r, k, n_rows) in selection:
            sha, size = sha_of(arts, name)
            row = frames(sha, size, k, n_rows)[r] if sha else None
            if row is None and kind == vocab.SG_SAMPLE:  # the two-row grid holds both
                gsha, gsize = sha_of(arts, vocab.grid_artifact())
                row = frames(gsha, gsize, k, 2)[0 if label == "z" else 1]
            if row is None and kind == vocab.SG_TRAVERSE:  # the whole-space grid, one row per latent
                space, latent = label.split("\n")[1], int(label.split("\n")[0].split()[1])
                gsha, gsize = grids.get(space, (None, (64, 64)))
                row = frames(gsha, gsize, k, n_lat)[latent] if gsha else [None] * k
            out.append((label, row if row is not None else [None] * len(col_labels)))
        return out

    title = f"{kind} · {labels.get(rid, rid[:8])}"
    render(rows, col_labels, build_rows, title, f"grid-{kind}-{rid[:8]}.png", rows_text, cell, per_page)


if kind not in DIP_KINDS:
    stylegan_grid()
    st.stop()


NO_DEFAULT = object()  # None is a level of its own (the image of a no-reference run)


def pick(label: str, column: str, frame: pd.DataFrame, key: str, default=NO_DEFAULT, context: str = "",
         format_func=data.fmt):
    """A bound selectbox over the levels of `column` in `frame` (None when it has none); its
    value survives a switch to another kind and back (`restore`/`keep`, per `context`)."""
    if column not in frame.columns:
        return None
    options = data.levels(frame[column])
    if not options:
        return None
    return choose(label, options, default, key, context, format_func=format_func)


def busiest_image(frame: pd.DataFrame, task: str | None):
    """The image with the most runs (of the linked `task`, when it has runs): a no-reference
    photo (image None, listed last) opened first as "none" and hid the grid with the most runs;
    a shared `?grid_task=inpaint` link opened a denoise grid because that image has no inpainting."""
    if "image" not in frame.columns:
        return NO_DEFAULT
    if task is not None and "task" in frame.columns and (frame["task"].astype(str) == task).any():
        frame = frame[frame["task"].astype(str) == task]
    counts = frame["image"].dropna().map(data.hashable).value_counts()
    return counts.index[0] if len(counts) else None


def image_label(v) -> str:
    return "no reference (your noisy photo)" if data.missing(v) else data.fmt(v)


def choose(label: str, options: list, default, key: str, context: str = "", **extra):
    """A bound selectbox whose value survives a switch to another kind and back; a value kept for
    another context (kind, task) or no longer among the options is dropped, from the URL too."""
    restore(key, context)
    shown = extra.get("format_func", str)
    if st.session_state.get(key, object()) not in options:
        st.session_state.pop(key, None)
    if key in st.query_params and st.query_params[key] not in {shown(o) for o in options} | {str(o) for o in options}:
        del st.query_params[key]
    kw = {} if key in st.session_state else {"index": next((i for i, o in enumerate(options) if o is default or
                                                              (default is not NO_DEFAULT and o == default)), 0)}
    value = st.selectbox(label, options, key=key, bind="query-params", **kw, **extra)
    keep(key, value, context)
    return value


def matches(frame: pd.DataFrame, column: str, value) -> pd.Series:
    return pd.Series(data.is_in(frame[column], [value]), index=frame.index)


top = st.columns(4)
with top[0]:
    image = pick("Image", "image", pool, "grid_image", busiest_image(pool, st.query_params.get("grid_task")),
                 context=kind, format_func=image_label)
sub = pool[matches(pool, "image", image)] if "image" in pool.columns else pool
with top[1]:
    task = pick("Task", "task", sub, "grid_task", context=kind)
sub = sub[matches(sub, "task", task)] if "task" in sub.columns else sub
here = f"{kind}|{task}"  # the rows and fixed values chosen for one kind and task are kept for it alone

# Only parameters these runs have and vary (a baseline has no depth; missing throughout is no factor).
factors = [c for c in data.varying(sub, params) if c not in ("image", "task") and sub[c].notna().any()]
if not factors:
    st.info("Only one run matches this image and task: nothing to lay out in rows.")
    rows_f: list[str] = []
else:
    second = "region" if task == "inpaint" else "sigma"
    preferred = ["method", second] if kind == vocab.DIP_BASELINE else ["depth", second, "arch", "loss"]
    outer_default = next((f for f in preferred if f in factors), factors[0])
    inner_default = next((f for f in preferred if f in factors and f != outer_default), NONE)
    with top[2]:
        outer = choose("Rows: outer factor", factors, outer_default, "grid_rows", here)
    with top[3]:
        inner = choose("Rows: inner factor", [NONE] + [f for f in factors if f != outer], inner_default,
                       "grid_rows2", here)
    rows_f = [outer] + ([inner] if inner not in (NONE, outer) else [])

fixed = [f for f in factors if f not in rows_f]
chosen_fixed: dict = {}
if fixed:
    st.markdown("**Fixed factors**")
    fcols = st.columns(min(len(fixed), 4))
    for i, f in enumerate(fixed):
        with fcols[i % len(fcols)]:
            # The report's choice, else the value most of the runs left have: the first level (a
            # searched lr of another sweep) left every row of the grid without a run.
            common = sub[f].dropna().map(data.hashable).value_counts()
            default = {"arch": "seed-double", "loss": "l2"}.get(f, common.index[0] if len(common) else NO_DEFAULT)
            chosen_fixed[f] = pick(f, f, sub, f"fix_{f}", default, here)
        sub = sub[matches(sub, f, chosen_fixed[f])]  # later factors offer only what is left

opts = st.columns([2, 2, 3])
with opts[0]:
    restore("grid_inputs")
    inputs = st.multiselect("Leading columns", ["clean", "corrupted"],
                            **({} if "grid_inputs" in st.session_state else {"default": ["corrupted"]}),
                            key="grid_inputs", bind="query-params")
    keep("grid_inputs", inputs)
with opts[1]:
    restore("grid_cell")
    cell = st.select_slider("Cell size (px)", [64, 96, 128, 160, 192, 256],
                            **({} if "grid_cell" in st.session_state else {"value": 128}),
                            key="grid_cell", bind="query-params")
    keep("grid_cell", cell)

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
file_name = "grid-" + "-".join(data.fmt(x) for x in (image, task, *rows_f) if x is not None) + ".png"
render([(label, r, None) for label, r in row_runs], col_labels, lambda sel: build_rows([(lab, r) for lab, r, _ in sel]),
       title, file_name, " × ".join(rows_f) or "one run", cell)
