"""StyleGAN: the report's StyleGAN study (Figures 18–22), z against w at every step.

Top to bottom: samples from z and from w (Figure 20); interpolations between two images with
the classifier's label on every frame and the frame where it flips (Figures 18–19); the SVM
directions' accuracy in z and in w; traversals along those directions with the attribute and
identity curves (Figures 21–22); and the report's questions answered with the numbers. The runs
are the stylegan-* kinds (`priorlab sweep configs/stylegan_smoke.yaml`); where a kind has
several finished runs, a picker (bound to the URL) chooses one.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.analysis import stylegan as sgt
from priorlab.analysis.runframe import missing, param_of, summary_of
from priorlab.dashboard import data, images, sg_answers, strips
from priorlab.dashboard.frames import MAX_COLS, artifact_sha, cell_for, frames_of, show, shown_columns
from priorlab.dashboard.widgets import EMPTY, fmt_number as fmt, md, number as num, url_pick
from priorlab.vocab import INTERP_SPACES as INTERP, LATENT_SPACES, space_key

KINDS = vocab.STYLEGAN_KINDS
HINT = "No StyleGAN runs yet: run `priorlab sweep configs/stylegan_smoke.yaml`"
COLORS = {"z_lerp": "#d62728", "z_slerp": "#ff7f0e", "w_lerp": "#1f77b4"}
LATENT_COLOR = alt.Scale(domain=["z", "w"], range=["#d62728", "#1f77b4"])
MAX_ROWS = 8  # latents per traversal figure; more are paged

st.title("StyleGAN")
st.caption("The report's StyleGAN study: samples from z and w, where the classifier changes its mind "
           "along interpolations, SVM directions in z and w, and traversals along them.")

d = data.Data()
if d.error:
    st.error(md(d.error), icon=":material/error:")
    st.stop()
runs = d.runs()
sg = runs[runs["kind"].isin(KINDS)] if not runs.empty else runs
if sg.empty:
    where = "no results store" if not d.exists else "no StyleGAN runs in the store"
    st.info(f"{HINT}  \n({where} at {md(d.root)}; point the dashboard elsewhere with "
            "`priorlab dashboard --store DIR`)", icon=":material/inbox:")
    st.stop()
labels = data.labels(d)


def classifier_of(run: pd.Series) -> tuple[float, str, str]:
    """(threshold, positive name, negative name) of the run's classifier."""
    cfg = param_of(run, "classifier", {})
    cfg = cfg if isinstance(cfg, dict) else {}
    threshold = num(cfg.get("threshold", 0.5))
    return (0.5 if np.isnan(threshold) else threshold,
            str(summary_of(run, "positive", cfg.get("positive", "positive"))),
            str(summary_of(run, "negative", cfg.get("negative", "negative"))))


def pick_run(kind: str, key: str, label: str) -> pd.Series | None:
    """The finished run of `kind` to show (a picker when there are several), or None with a note."""
    pool = scope[scope["kind"] == kind]
    done = pool[pool["status"] == vocab.DONE].sort_values("finished_at", ascending=False, na_position="last")
    if pool.empty:  # nothing to wait for: "yet" would promise a run that was never asked for
        st.info(f"No {md(kind)} runs in " + ("this sweep." if scope is not sg else "the store."))
        return None
    if done.empty:
        notes = []
        if n := int(pool["status"].isin(vocab.FAILED).sum()):
            notes.append(f"{n} failed, see above")
        if n := int(pool["status"].isin(vocab.WAITING).sum()):
            notes.append(f"{n} not finished, see above")
        st.info(f"No finished {md(kind)} run yet" + (f" ({'; '.join(notes)})" if notes else "") + ".")
        return None
    ids = done["run_id"].tolist()
    if len(ids) == 1:
        st.caption("Run " + md(labels.get(ids[0], ids[0])))
        return done.iloc[0]
    # `?key=<run id or a prefix of it>` picks the run; the URL keeps the run id, not the label
    # (a bound selectbox would put the label, which changes as runs are added, in the link).
    rid = url_pick(label, ids, key, labels)
    return done[done["run_id"] == rid].iloc[0]


# ------------------------------------------------------------------ scope and failures

sweeps = runframe.sweep_names(sg)
scope = sg
if len(sweeps) > 1:
    options = ["all", *sweeps]
    if st.session_state.get("sg_sweep", object()) not in options:
        st.session_state.pop("sg_sweep", None)
    chosen = st.selectbox("Sweep", options, key="sg_sweep", bind="query-params")
    if chosen != "all":
        scope = sg[runframe.in_sweep(sg, chosen)]

failed = scope[scope["status"].isin(vocab.FAILED)]
if not failed.empty:
    st.warning(f"{len(failed)} StyleGAN run{'s' if len(failed) != 1 else ''} did not finish "
               f"({', '.join(f'{k}: {n}' for k, n in failed['kind'].value_counts().items())}).")
    with st.expander("Failed runs and their errors"):
        for _, r in failed.iterrows():
            st.markdown(f"**{md(r['kind'])}** {md(labels.get(r['run_id'], r['run_id']))} · {md(r['status'])}")
            if isinstance(r.get("error"), str) and r["error"]:
                st.code(r["error"], language="python")
stuck = runframe.stalled(scope, dict(zip(d.sweeps()["name"], d.sweeps()["status"])))
if stuck.any():  # their sweep ended: Reload would never show them finished
    st.warning(f"{int(stuck.sum())} StyleGAN run(s) were interrupted before they finished (sweep "
               f"{md(', '.join(runframe.sweep_names(scope[stuck])))} stopped). To finish them run "
               + md(f"priorlab sweep CONFIG --store {d.root}") + " again: it reruns only the unfinished runs.")
if waiting := int(scope["status"].isin(vocab.WAITING).sum()) - int(stuck.sum()):
    st.caption(f"{waiting} StyleGAN run{'s' if waiting != 1 else ''} pending or running; "
               "press *Reload data* to see them when they finish.")
done = scope[scope["status"] == vocab.DONE]

# ------------------------------------------------------------------ 1. samples (Figure 20)

st.subheader("Samples from z and from w", anchor=False)
st.caption("Figure 20: a row of images from random z vectors (noise space, through the mapping network) "
           "and a row from random w vectors (style space) fed to the synthesis network.")
run = pick_run(vocab.SG_SAMPLE, "sg_sample", "Sample run")
if run is not None:
    rid = run["run_id"]
    arts = d.artifacts([rid])
    n = int(num(param_of(run, "n", summary_of(run, "n", 0))) or 0)
    m = d.metrics([rid], names=[vocab.space_metric("prob", s) for s in LATENT_SPACES])
    prob = {s: m[m["name"] == vocab.space_metric("prob", s)].set_index("step")["value"] for s in LATENT_SPACES}
    rows = []
    for s in LATENT_SPACES:
        cut = frames_of(d.root, artifact_sha(arts, rid, vocab.samples_artifact(s)), n) if n else None
        rows.append(cut[0] if cut else None)
    if any(r is None for r in rows) and n:  # fall back to the two-row grid
        grid = frames_of(d.root, artifact_sha(arts, rid, vocab.grid_artifact()), n, 2)
        rows = [r if r is not None else (grid[i] if grid else None) for i, r in enumerate(rows)]
    cells = [(r if r is not None else [None] * max(n, 1))[:MAX_COLS] for r in rows]
    threshold, positive, negative = classifier_of(run)
    captions = [[(f"p={prob[s].get(k):.2f}" if k in prob[s].index else "") for k in range(len(cells[i]))]
                for i, s in enumerate(LATENT_SPACES)]
    has_prob = any(prob[s].size for s in prob)
    borders = [[(strips.POSITIVE if prob[s].get(k, 0) >= threshold else strips.NEGATIVE) if has_prob else None
                for k in range(len(cells[i]))] for i, s in enumerate(LATENT_SPACES)]
    source = summary_of(run, "w_source", param_of(run, "w_source", "mapped"))
    w_text = ("w = mapping(z') of fresh z'" if source == "mapped" else "w ~ N(0, I) fed to synthesis")
    fig = strips.annotated_grid(cells, captions=captions if has_prob else None, borders=borders,
                                row_labels=list(LATENT_SPACES), cell=cell_for(cells))
    show(fig, f"z (top row): G(z), z ~ N(0, I) · w (bottom row): {w_text} · truncation ψ = "
              f"{fmt(param_of(run, 'truncation_psi', 1.0), 'g')}"
              + (f" · border: classifier says {md(positive)} (red) or {md(negative)} (blue)" if has_prob else "")
              + (f" · the first {MAX_COLS} of {n} per row (the download has all)" if n > MAX_COLS else ""))
    c = st.columns(4)
    for i, sp in enumerate(LATENT_SPACES):
        c[i].metric(f"diversity in {sp}", fmt(summary_of(run, space_key(sp, "diversity")), ".3f"),
                    help="mean pixel RMSE between every two images of the row")
        if has_prob:
            c[2 + i].metric(f"{md(positive)} in {sp}", fmt(summary_of(run, space_key(sp, "positive_frac")), ".0%"))
    png = d.png(artifact_sha(arts, rid, vocab.grid_artifact()))
    if png:
        st.download_button("Download the z/w grid (PNG)", png, file_name=f"samples-{rid[:8]}.png", mime="image/png",
                           on_click="ignore")

# ------------------------------------------------------------------ 2. interpolations (Figures 18-19)

st.subheader("Interpolations: where does the classifier flip?", anchor=False)
st.caption("Figures 18–19: the same two endpoint images joined through z (lerp, slerp) and through w "
           "(lerp). Every frame carries the classifier's label and probability; the first frame whose "
           "label differs from the start's is marked **flip**.")
run = pick_run(vocab.SG_INTERPOLATE, "sg_interp", "Interpolation run")
if run is not None:
    rid = run["run_id"]
    threshold, positive, negative = classifier_of(run)
    fr, flips = sgt.interpolation_frames(d.metrics([rid]))
    spaces = [s for s in INTERP if s in set(fr["space"])]
    if fr.empty or not spaces:
        st.info("This run recorded no per-frame labels.")
    else:
        pairs = sorted(fr["pair"].unique().tolist())
        K = int(fr["step"].max()) + 1

        if st.session_state.get("sg_pair", object()) not in pairs:
            st.session_state.pop("sg_pair", None)
        if len(pairs) <= 12:
            pair = st.segmented_control("Pair", pairs, default=pairs[0], key="sg_pair", bind="query-params",
                                        required=True)
        else:
            pair = st.selectbox("Pair", pairs, key="sg_pair", bind="query-params")
        pair = pairs[0] if pair is None else pair
        arts = d.artifacts([rid])
        at_pair = flips[flips["pair"] == pair].set_index("space")["flip"]
        flip_of = {s: (None if s not in at_pair.index or missing(at_pair[s]) else int(at_pair[s])) for s in spaces}
        cols = shown_columns(K, keep=flip_of.values())
        cells, captions, borders, marks, where = [], [], [], [], []
        for space in spaces:
            g = fr[(fr["space"] == space) & (fr["pair"] == pair)].set_index("step")
            cut = frames_of(d.root, artifact_sha(arts, rid, vocab.strip_artifact(space, vocab.pair(pair))), K)
            cells.append([cut[0][k] for k in cols] if cut else [None] * len(cols))
            flip = flip_of[space]
            captions.append([(f"{k}: {positive if g['label'].get(k, 0) >= 0.5 else negative}\n"
                              f"p={fmt(g['prob'].get(k))}") for k in cols])
            borders.append([strips.POSITIVE if g["label"].get(k, 0) >= 0.5 else strips.NEGATIVE for k in cols])
            marks.append(["flip" if k == flip else None for k in cols])
            where.append(f"{space} at frame {flip}" if flip is not None else f"{space} never")
        fig = strips.annotated_grid(cells, captions=captions, borders=borders, marks=marks, row_labels=spaces,
                                    col_labels=[f"t={k / max(K - 1, 1):.2f}" for k in cols],
                                    cell=cell_for(cells))
        show(fig, f"Pair {pair}: the label flips {', '.join(where)} (frames 0–{K - 1}); "
                  f"border red = {md(positive)}, blue = {md(negative)}"
                  + (f" · {len(cols)} of the {K} frames shown" if len(cols) < K else ""))

        one = fr[fr["pair"] == pair]
        interp_color = alt.Scale(domain=spaces, range=[COLORS[s] for s in spaces])
        flip_rules = flips[(flips["pair"] == pair) & flips["flip"].notna()]
        base = alt.Chart(one).encode(x=alt.X("step:Q", title="frame", axis=alt.Axis(tickMinStep=1)),
                                     color=alt.Color("space:N", scale=interp_color, title="space"))
        lines = base.mark_line(point=True).encode(
            y=alt.Y("prob:Q", title=f"P({positive})", scale=alt.Scale(domain=[0, 1])),
            tooltip=["space:N", "step:Q", alt.Tooltip("prob:Q", format=".3f"), "label:Q"])
        thr = alt.Chart(pd.DataFrame({"y": [threshold]})).mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q")
        rules = alt.Chart(flip_rules).mark_rule(strokeWidth=2, opacity=0.6).encode(
            x="flip:Q", color=alt.Color("space:N", scale=interp_color),
            tooltip=["space:N", alt.Tooltip("flip:Q", title="flip frame")])
        st.altair_chart((lines + thr + rules).properties(height=260), width="stretch")
        st.caption(f"P({md(positive)}) per frame for pair {pair}; dashed: the threshold {threshold:g}; "
                   "vertical rules: the flip frame in each space.")

        cols = st.columns(len(spaces))
        for col, space in zip(cols, spaces):
            f = flips[flips["space"] == space]["flip"].dropna().astype(float)
            total = int((flips["space"] == space).sum())
            col.metric(f"{space}: mean flip frame", fmt(f.mean()) if len(f) else "—",
                       help="the first frame whose label differs from frame 0's, averaged over the pairs that flip")
            col.caption(f"{fmt(f.mean() / (K - 1) if len(f) and K > 1 else np.nan, '.0%')} of the way · "
                        f"flips in {len(f)} of {total} pair{'' if total == 1 else 's'}")
        table = flips.pivot_table(index="pair", columns="space", values="flip", aggfunc="first", dropna=False)
        table = table.reindex(columns=spaces)
        table.index = [f"pair {p}" for p in table.index]
        st.dataframe(table.astype("Float64"), width="stretch", placeholder=EMPTY)

# ------------------------------------------------------------------ 3. SVM directions

st.subheader("Latent directions: SVM accuracy in z and in w", anchor=False)
st.caption("InterFaceGAN's recipe: score samples with the classifier, keep the most confident at each "
           "end, fit a linear SVM in z and in w; its normal is the attribute direction.")
run = pick_run(vocab.SG_DIRECTION, "sg_dir", "Direction run")
if run is not None:
    rid = run["run_id"]
    _, positive, negative = classifier_of(run)
    acc = pd.DataFrame([{"space": s, "validation accuracy": num(summary_of(run, space_key(s, "val_accuracy"))),
                         "train accuracy": num(summary_of(run, space_key(s, "train_accuracy"))),
                         "projection–probability correlation": num(summary_of(run, space_key(s, "prob_corr")))}
                        for s in LATENT_SPACES if not np.isnan(num(summary_of(run, space_key(s, "val_accuracy"))))])
    if acc.empty:
        st.info("This run recorded no SVM accuracy.")
    else:
        long = acc.melt(id_vars="space", value_vars=["train accuracy", "validation accuracy"], var_name="split",
                        value_name="accuracy")
        bars = alt.Chart(long).mark_bar().encode(
            x=alt.X("space:N", title=None, sort=["z", "w"], axis=alt.Axis(labelAngle=0)), xOffset="split:N",
            y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("split:N", scale=alt.Scale(range=["#9ecae1", "#08519c"])),
            tooltip=["space:N", "split:N", alt.Tooltip("accuracy:Q", format=".3f")])
        chance = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q")
        c = st.columns([2, 3])
        with c[0]:
            st.altair_chart((bars + chance).properties(height=240), width="stretch")
        with c[1]:
            st.dataframe(acc, hide_index=True, width="stretch",
                         column_config={k: st.column_config.NumberColumn(format="%.3f") for k in acc.columns[1:]},
                         placeholder=EMPTY)
            st.caption(f"{int(num(summary_of(run, 'n_kept', 0)) or 0)} of {int(num(summary_of(run, 'n_samples', 0)) or 0)} "
                       f"samples kept ({int(num(summary_of(run, 'n_train', 0)) or 0)} train, "
                       f"{int(num(summary_of(run, 'n_val', 0)) or 0)} validation); dashed: chance.")
    arts = d.artifacts([rid], names=[vocab.EXTREMES])
    sha = artifact_sha(arts, rid, vocab.EXTREMES)
    img = d.image(sha, (256, 64))
    if img is None:
        img = images.placeholder(256, 64, "missing" if sha else "not recorded")
    show(img, f"What the SVM separates: the samples the classifier is surest are “{md(negative)}” (top row) and "
              f"“{md(positive)}” (bottom row)")
    others = done[done["kind"] == vocab.SG_DIRECTION]
    if len(others) > 1:
        with st.expander(f"All {len(others)} direction runs"):
            st.dataframe(pd.DataFrame({"run": others["run_id"].map(lambda r: labels.get(r, r)),
                                       **{f"{s} {k}": runframe.summary_number(others, space_key(s, k))
                                          for s in LATENT_SPACES for k in ("val_accuracy", "train_accuracy")}}),
                         hide_index=True, width="stretch", placeholder=EMPTY)

# ------------------------------------------------------------------ 4. traversals (Figures 21-22)

st.subheader("Traversals along the directions", anchor=False)
st.caption("Figures 21–22: latents moved along ±α·n (α in standard deviations of the latents' projection "
           "on n, so z and w moves are comparable). Attribute: the classifier's probability; identity: "
           "SSIM and pixel distance to the α = 0 image.")
run = pick_run(vocab.SG_TRAVERSE, "sg_trav", "Traversal run")
if run is not None:
    rid = run["run_id"]
    threshold, positive, negative = classifier_of(run)
    alpha, tv = sgt.traversal_curves(d.metrics([rid]))
    spaces = [s for s in LATENT_SPACES if s in set(tv["space"])]
    if tv.empty or alpha.empty or not spaces:
        st.info("This run recorded no traversal curves.")
    else:
        K = len(alpha)
        mid = K // 2
        units = summary_of(run, "alpha_units", param_of(run, "alpha_units", "std"))
        unit = "σ" if units == "std" else ""
        all_latents = sorted({w[1] for who in tv["who"] if (w := vocab.parse_who(who))})
        latents = all_latents
        if len(all_latents) > MAX_ROWS:
            starts = list(range(0, len(all_latents), MAX_ROWS))
            first = st.select_slider("Latents", starts, key="sg_latents", bind="query-params",
                                     format_func=lambda a: f"{a}–{min(a + MAX_ROWS, len(all_latents)) - 1}")
            latents = all_latents[first: first + MAX_ROWS]
        cols = shown_columns(K, keep=[mid])
        arts = d.artifacts([rid])
        # Bound to `?sg_space=` so a copied link opens on the same space.
        tabs = st.tabs([f"{s} space" for s in spaces], key="sg_space", bind="query-params")
        for tab, space in zip(tabs, spaces):
            with tab:
                v = tv[tv["space"] == space].pivot_table(index=["who", "step"], columns="measure", values="value")
                cells, captions, borders, marks = [], [], [], []
                grid = None
                for i in latents:
                    cut = frames_of(d.root, artifact_sha(arts, rid, vocab.strip_artifact(space, vocab.latent(i))), K)
                    if cut is None and grid is None:  # the whole-grid artifact, cut once
                        grid = frames_of(d.root, artifact_sha(arts, rid, vocab.grid_artifact(space)), K,
                                         len(all_latents)) or []
                    row_frames = cut[0] if cut else (grid[i] if grid and i < len(grid) else [None] * K)
                    cells.append([row_frames[k] for k in cols])
                    row = v.loc[vocab.latent(i)] if vocab.latent(i) in v.index.get_level_values(0) else pd.DataFrame()
                    get = lambda col, k: row[col].get(k) if col in row.columns else None  # noqa: E731
                    captions.append([f"p={fmt(get('prob', k))}\nssim {fmt(get('ssim', k))}" for k in cols])
                    borders.append([None if missing(get("prob", k)) else
                                    (strips.POSITIVE if get("prob", k) >= threshold else strips.NEGATIVE)
                                    for k in cols])
                    marks.append(["start" if k == mid else None for k in cols])
                fig = strips.annotated_grid(cells, captions=captions, borders=borders, marks=marks,
                                            col_labels=[f"a={alpha.iloc[k]:+.2g}" for k in cols],
                                            title=f"{space}: alpha (a) in "
                                                  f"{'standard deviations' if unit else 'latent units'}",
                                            row_labels=[f"latent {i}" for i in latents],
                                            cell=cell_for(cells))
                show(fig, f"{space}: each row one latent moved from −α_max (left) to +α_max (right); "
                          f"under each frame P({md(positive)}) and SSIM to the start (marked); "
                          f"border red = {md(positive)}, blue = {md(negative)}")

        curves = tv.copy()
        curves["mean"] = curves["who"] == vocab.MEAN
        titles = {"prob": f"P({positive})", "ssim": "SSIM to the start (identity)",
                  "pixel_dist": "pixel RMSE to the start", "embed_dist": "identity-embedding distance"}
        shown = [k for k in titles if k in set(curves["measure"])]
        cols = st.columns(len(shown))
        for col, measure in zip(cols, shown):
            part = curves[curves["measure"] == measure]
            base = alt.Chart(part).encode(
                x=alt.X("alpha:Q", title=f"α ({'std' if unit else 'latent units'})"),
                y=alt.Y("value:Q", title=titles[measure],
                        scale=alt.Scale(domain=[0, 1]) if measure in ("prob", "ssim") else alt.Scale(zero=True)),
                color=alt.Color("space:N", scale=LATENT_COLOR), detail="who:N",
                tooltip=["space:N", "who:N", alt.Tooltip("alpha:Q", format=".2f"), alt.Tooltip("value:Q", format=".3f")])
            layer = (base.transform_filter("!datum.mean").mark_line(opacity=0.25, strokeWidth=1)
                     + base.transform_filter("datum.mean").mark_line(point=True, strokeWidth=3))
            if measure == "prob":
                layer += (alt.Chart(pd.DataFrame({"y": [threshold]}))
                          .mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q"))
            with col:
                st.altair_chart(layer.properties(height=240), width="stretch")
        st.caption("Bold: the mean over latents; thin: each latent. Dashed: the classifier's threshold.")

        shown_keys = {f"Δ P({positive}) (−α_max → +α_max)": "prob_delta", "monotone": "prob_monotone_frac",
                      "success (crosses the threshold)": "success_rate", "SSIM at ±α_max": "ssim_at_max",
                      "pixel RMSE at ±α_max": "pixel_dist_at_max", "identity lost per Δprob": "ssim_loss_per_dprob"}
        rows = [{"space": s, **{label: num(summary_of(run, space_key(s, key))) for label, key in shown_keys.items()}}
                for s in spaces]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={"monotone": st.column_config.NumberColumn(format="percent"),
                                    "success (crosses the threshold)": st.column_config.NumberColumn(format="percent")}, placeholder=EMPTY)
# ------------------------------------------------------------------ 5. the report's questions

scoped = len(sweeps) > 1 and scope is not sg
sg_answers.render(d, done, (chosen,) if scoped else (), "this sweep" if scoped else "the store")
