"""StyleGAN results as tables, and the StyleGAN page's answers, computed once.

From the runs frame (summaries): `flips` (one row per interpolation pair and path) and
`traversals` (one row per traverse run and latent space). From one run's metrics: the
per-frame `interpolation_frames` with each pair's flip (`vocab.flip_step`, the one rule the
job uses too) and the `traversal_curves`. `flip_answer` / `traversal_answer` are what the
page says about z against w, as numbers and verdict words: the page words them, the rules
(`IDENTITY_SSIM`, `SAME_FLIP_FRAMES`) live here and in `findings.stylegan`, which checks the
same questions statistically. pandas only: the dashboard imports this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis.runframe import of_kind, summary_number
from priorlab.vocab import LATENT_SPACES, TRAVERSE_KEYS, W_INTERP, Z_INTERP, space_key

# SSIM to the alpha = 0 image at or above this counts as "the same face"; below it identity
# is lost. 0.9 is where SSIM differences become plainly visible (a slight blur of a face
# already costs ~0.05); the report's "looks very different" is far below it.
IDENTITY_SSIM = 0.9
MIN_MONOTONE = 0.5  # the attribute must rise monotonically along at least this share of traversals
SAME_FLIP_FRAMES = 0.5  # mean flips closer than half a frame are "about the same point" in z and w
FLIP_COLUMNS = ["run_id", "pair", "space", "steps", "flip_step", "flip_frac"]
CURVE_MEASURES = ("prob", "ssim", "pixel_dist", "embed_dist")


def flips(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (done stylegan-interpolate run, pair, space): `FLIP_COLUMNS` — the frame where
    the label first differs from frame 0's (the job's summary) and that frame over (steps - 1);
    both NaN when the label never flips."""
    d = of_kind(runs, vocab.SG_INTERPOLATE, [vocab.DONE])
    rows = []
    if not d.empty:
        steps = summary_number(d, "steps")
        if "steps" in d.columns:  # the parameter, when the summary lacks it
            steps = steps.fillna(pd.to_numeric(d["steps"], errors="coerce"))
        keys = [(c, *k) for c in d.columns if (k := vocab.parse_flip_step_key(c))]
        for col, space, pair in keys:
            ran = summary_number(d, space_key(space, "flip_rate")).notna()
            for idx in d.index[ran.to_numpy()]:
                k = steps.loc[idx]
                f = pd.to_numeric(pd.Series([d.at[idx, col]]), errors="coerce").iloc[0]
                rows.append({"run_id": d.at[idx, "run_id"], "pair": pair, "space": space, "steps": k,
                             "flip_step": f, "flip_frac": f / (k - 1) if k and k > 1 else np.nan})
    out = pd.DataFrame(rows, columns=FLIP_COLUMNS)
    return out.sort_values(["run_id", "pair", "space"], kind="stable").reset_index(drop=True)


def traversals(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (done stylegan-traverse run, space) with `TRAVERSE_KEYS` (NaN where absent)."""
    d = of_kind(runs, vocab.SG_TRAVERSE, [vocab.DONE])
    rows = []
    for space in LATENT_SPACES:
        part = d[summary_number(d, space_key(space, "prob_delta")).notna().to_numpy()] if len(d) else d
        values = {key: summary_number(part, space_key(space, key)) for key in TRAVERSE_KEYS}
        for idx in part.index:
            rows.append({"run_id": part.at[idx, "run_id"], "space": space,
                         **{key: values[key].loc[idx] for key in TRAVERSE_KEYS}})
    return pd.DataFrame(rows, columns=["run_id", "space", *TRAVERSE_KEYS])


# ---------------------------------------------------------------------------- one run's frames

def interpolation_frames(metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From one stylegan-interpolate run's metrics: `(frames, flips)` — frames one row per
    `space, pair, step` with `prob, label`; flips one row per `space, pair` with `frames, flip`
    (the flip frame by `vocab.flip_step`, None when the label never changes). Both empty when
    the run logged no labels."""
    parsed = [(i, f) for i, n in zip(metrics.index, metrics["name"])
              if (f := vocab.parse_frame_metric(n)) and f[0] in ("prob", "label") and f[1] in vocab.INTERP_SPACES
              and (w := vocab.parse_who(f[2])) and w[0] == "pair"]
    empty = (pd.DataFrame(columns=["space", "pair", "step", "prob", "label"]),
             pd.DataFrame(columns=["space", "pair", "frames", "flip"]))
    if not parsed:
        return empty
    rows = metrics.loc[[i for i, _ in parsed]]
    long = rows.assign(what=[f[0] for _, f in parsed], space=[f[1] for _, f in parsed],
                       pair=[vocab.parse_who(f[2])[1] for _, f in parsed])
    frames = long.pivot_table(index=["space", "pair", "step"], columns="what", values="value").reset_index()
    if "label" not in frames.columns:
        return empty
    if "prob" not in frames.columns:
        frames["prob"] = np.nan
    out = []
    for (space, pair), g in frames.sort_values("step").groupby(["space", "pair"]):
        k = vocab.flip_step(g["label"].round().astype(int).tolist())
        out.append({"space": space, "pair": int(pair), "frames": len(g),
                    "flip": None if k is None else int(g["step"].iloc[k])})
    frames["pair"] = frames["pair"].astype(int)
    return frames[["space", "pair", "step", "prob", "label"]], pd.DataFrame(out, columns=empty[1].columns)


def traversal_curves(metrics: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """From one stylegan-traverse run's metrics: `(alpha, curves)` — alpha per step, and one row
    per `measure, space, who, step, value, alpha` (who: `latent<i>` or `mean`)."""
    alpha = metrics[metrics["name"] == "alpha"].set_index("step")["value"].sort_index()
    parsed = [(i, f) for i, n in zip(metrics.index, metrics["name"])
              if (f := vocab.parse_frame_metric(n)) and f[0] in CURVE_MEASURES and f[1] in LATENT_SPACES]
    cols = ["measure", "space", "who", "step", "value", "alpha"]
    if not parsed:
        return alpha, pd.DataFrame(columns=cols)
    rows = metrics.loc[[i for i, _ in parsed]]
    curves = rows.assign(measure=[f[0] for _, f in parsed], space=[f[1] for _, f in parsed],
                         who=[f[2] for _, f in parsed])
    curves["alpha"] = curves["step"].map(alpha)
    return alpha, curves[cols]


# ---------------------------------------------------------------------------- the page's answers

@dataclass
class FlipAnswer:
    """Where the classifier flips along each path, over the finished interpolation pairs."""

    pairs: int  # distinct (run, pair)
    steps: list[int]  # the frame counts among the runs
    per_space: pd.DataFrame  # space, flip_step (mean), flip_frac (mean), n_flip, n
    vs_w: pd.DataFrame = field(default_factory=pd.DataFrame)  # space, sooner, later, same, n (against w lerp)
    verdict: str | None = None  # "same", "z" or "w": where the label flips sooner, by the mean fraction


def flip_answer(runs: pd.DataFrame) -> FlipAnswer | None:
    fl = flips(runs)
    if fl.empty:
        return None
    steps = sorted({int(k) for k in fl["steps"].dropna()})
    per = (fl.groupby("space").agg(flip_step=("flip_step", "mean"), flip_frac=("flip_frac", "mean"),
                                   n_flip=("flip_step", "count"), n=("pair", "size"))
           .reindex([s for s in vocab.INTERP_SPACES if s in set(fl["space"])]).reset_index())
    answer = FlipAnswer(pairs=len(fl[["run_id", "pair"]].drop_duplicates()), steps=steps, per_space=per)
    wide = fl.pivot_table(index=["run_id", "pair"], columns="space", values="flip_frac", aggfunc="first")
    if W_INTERP not in wide.columns:
        return answer
    rows = []
    for zs in [s for s in Z_INTERP if s in wide.columns]:
        both = wide[[zs, W_INTERP]].dropna()
        if len(both):
            diff = both[zs] - both[W_INTERP]
            rows.append({"space": zs, "sooner": int((diff < 0).sum()), "later": int((diff > 0).sum()),
                         "same": int((diff == 0).sum()), "n": len(both)})
    answer.vs_w = pd.DataFrame(rows, columns=["space", "sooner", "later", "same", "n"])
    z_mean = fl.loc[fl["space"].isin(Z_INTERP), "flip_frac"].mean()
    w_mean = fl.loc[fl["space"] == W_INTERP, "flip_frac"].mean()
    if np.isfinite(z_mean) and np.isfinite(w_mean):
        tol = SAME_FLIP_FRAMES / max(steps[-1] - 1, 1) if steps else 0.05
        answer.verdict = "same" if abs(z_mean - w_mean) < tol else ("z" if z_mean < w_mean else "w")
    return answer


@dataclass
class TraversalAnswer:
    """Identity and attribute along the traversals, per latent space (means over runs)."""

    by_space: pd.DataFrame  # index: space; columns: TRAVERSE_KEYS
    kept: list[str]  # spaces whose SSIM at ±alpha_max is at least IDENTITY_SSIM
    lost: list[str]
    keeps_more: str | None = None  # the space that loses less identity per unit of attribute change
    ratio: float = float("nan")  # how many times less
    val_accuracy: dict[str, float] = field(default_factory=dict)  # the SVM's, per space, over direction runs


def traversal_answer(runs: pd.DataFrame) -> TraversalAnswer | None:
    tr = traversals(runs)
    if tr.empty:
        return None
    by = tr.groupby("space").mean(numeric_only=True).reindex([s for s in LATENT_SPACES if s in set(tr["space"])])
    ssim = by["ssim_at_max"]
    answer = TraversalAnswer(by_space=by, kept=[s for s in by.index if ssim[s] >= IDENTITY_SSIM],
                             lost=[s for s in by.index if ssim[s] < IDENTITY_SSIM])
    if set(LATENT_SPACES) <= set(by.index):
        z_loss, w_loss = by.loc["z", "ssim_loss_per_dprob"], by.loc["w", "ssim_loss_per_dprob"]
        if np.isfinite(z_loss) and np.isfinite(w_loss):
            answer.keeps_more = "w" if w_loss < z_loss else "z"
            answer.ratio = max(z_loss, w_loss) / max(min(z_loss, w_loss), 1e-12)
    dirs = of_kind(runs, vocab.SG_DIRECTION, [vocab.DONE])
    if len(dirs):
        answer.val_accuracy = {s: float(summary_number(dirs, space_key(s, "val_accuracy")).mean())
                               for s in LATENT_SPACES}
    return answer


def sooner_text(subject: str, other: str, sooner: int, later: int, same: int, n: int) -> str:
    """`z_lerp flips sooner than w_lerp in 2 of 3 pairs, at the same frame in 1`: the counts of a
    paired comparison in words, leaving out the zero ones (never "sooner in 0, later in 0")."""
    if n == 0:
        return f"no pair flips along both {subject} and {other}"
    counts = [(w, c, k) for w, c, k in (("sooner", "than", sooner), ("later", "than", later),
                                         ("at the same frame", "as", same)) if k]
    (w, c, k), rest = counts[0], counts[1:]
    if not rest:
        return f"{subject} flips {w} {c} {other} in " + (f"all {n} pairs" if n > 1 else "the one pair")
    return f"{subject} flips {w} {c} {other} in {k} of {n} pairs, " + ", ".join(f"{w} in {k}" for w, _, k in rest)
