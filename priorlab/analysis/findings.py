"""The seed report's claims, checked against the stored runs.

Each claim is one `Claim` record in `CLAIMS`: which runs it is about (`kind`, `filter`),
which factor levels it says differ (`better` vs `worse`) and on what metric. The default
check is a matched comparison (`stats.paired`): the better level's runs against the worse
level's runs that agree on every other varying parameter. A claim that is not a two-level
comparison gives its own `evaluator(claim, runs) -> dict` (the runs already selected);
`make_row` and `judge` turn its numbers into the same row and verdict as everyone else's.

Verdicts are deliberately three: "supported" and "contradicted" need a paired difference
whose bootstrap CI excludes 0 *and* a Wilcoxon p below `ALPHA` (the percentile bootstrap is
too narrow for a handful of pairs, the rank test guards it); anything short of that is "not
enough data", with the `explanation` saying whether pairs were missing or the difference
was not significant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis.columns import summary as summary_value
from priorlab.vocab import INTERP_SPACES, LATENT_SPACES, TRAVERSE_KEYS, W_INTERP, Z_INTERP, space_key
from priorlab.analysis.stats import PairedResult, bootstrap_ci, is_level, paired, usable, wilcoxon_p

SUPPORTED, CONTRADICTED, NOT_ENOUGH = "supported", "contradicted", "not enough data"
MIN_PAIRS = 3
ALPHA = 0.05
SEED_ARCHS = ("seed-double", "seed-single")  # the report's architectures 1 and 2
COLUMNS = ["claim", "text", "measure", "filter", "comparison", "metric", "n_pairs", "mean_diff",
           "lo", "hi", "win_rate", "p_value", "verdict", "explanation"]


@dataclass(frozen=True)
class Claim:
    """One claim of the report, and how priorlab checks it.

    `text` is what the report says; `measure` what is measured instead of the report's
    visual judgement, and why. `metric` may list alternatives: the first column with data
    among the selected runs is used. `filter` maps a column to a value or a list of values
    (None matches a missing value). `evaluator`, when given, replaces the paired check.
    """

    id: str
    text: str
    measure: str
    factor: str = ""
    better: Any = None
    worse: Any = None
    metric: str | tuple[str, ...] = "best_psnr"
    higher_is_better: bool = True
    filter: Mapping[str, Any] = field(default_factory=dict)
    kind: str | tuple[str, ...] | None = "dip"
    evaluator: Callable[["Claim", pd.DataFrame], dict] | None = None


def _more_iterations(claim: Claim, runs: pd.DataFrame) -> dict:
    """The report compares 1000 with 1500 iterations; any two budgets answer "do more help",
    so the most and fewest iterations in the store are compared."""
    metric = resolve_metric(claim, runs)
    levels = sorted(pd.unique(usable(runs, metric).get("iterations", pd.Series(dtype=float)).dropna()))
    if len(levels) < 2:
        found = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in levels) or "none"  # 300, not 300.0
        return make_row(claim, metric, explanation=(
            f"needs runs at two or more iteration budgets; found {found} among the selected runs"))
    return evaluate_paired(dataclasses.replace(claim, better=levels[-1], worse=levels[0]), runs)


REPORT_BUDGETS = (1000, 1500)  # the report's two iteration budgets (Figure 14)


def _stop_after_1000(claim: Claim, runs: pd.DataFrame) -> dict:
    """Where the runs should have stopped, against the report's shorter budget: per finished
    run that ran past 1000 iterations, the median of its detectors' stop steps minus 1000
    (the oracle's best_step when no detector was attached). Positive = the best stop lies
    past 1000, so 1500 iterations can help; negative = stop before 1000, longer only overfits."""
    from priorlab.analysis import stopping

    short = REPORT_BUDGETS[0]
    metric = "stop_step"
    comparison = f"stop step − {short} per run (detectors' median; positive = stop after {short})"
    done = runs[runs["status"] == vocab.DONE] if "status" in runs.columns else runs
    iters = pd.to_numeric(done.get("iterations", pd.Series(np.nan, index=done.index)), errors="coerce")
    long_runs = done[(iters > short).to_numpy()]
    if long_runs.empty:
        found = ", ".join(str(int(v)) for v in sorted(iters.dropna().unique())) or "none"
        r = _from_diffs("stop step", f"after {short}", f"before {short}", metric, [], True)
        return _row(claim, metric, r, NOT_ENOUGH, f"needs finished runs with more than {short} iterations to see past "
                    f"{short} (the report ran {REPORT_BUDGETS[1]}); found budgets {found}", comparison)
    stops = stopping.long_stops(long_runs)
    best = pd.to_numeric(long_runs.get("best_step", pd.Series(np.nan, index=long_runs.index)), errors="coerce")
    if stops.empty:
        per_run = pd.Series(best.to_numpy(), index=long_runs["run_id"]).dropna()
        source = "the oracle's best_step (no detector attached)"
    else:
        per_run = stops.dropna(subset=["stop_step"]).groupby("run_id")["stop_step"].median()
        source = "the detectors' median stop step"
    pairs = per_run.rename("stop_step").reset_index()
    pairs["diff"] = pairs["stop_step"] - short
    r = _from_diffs("stop step", f"after {short}", f"before {short}", metric, pairs["diff"], True, pairs)
    parts = [f"oracle best_step median {_fmt(float(best.median()), '.0f')} "
             f"(before {short} in {int((best < short).sum())} of {int(best.notna().sum())} runs)"]
    for d, g in stops.groupby("detector", sort=True):
        s = g["stop_step"].dropna()
        parts.append(f"{d} median {_fmt(float(s.median()), '.0f')} ({int((s < short).sum())} of {len(s)} before {short})")
    seen = f"{source} against {short}: " + "; ".join(parts)
    verdict, why = judge(r)
    if verdict == SUPPORTED:
        why = f"the best stop lies past {short}, so {REPORT_BUDGETS[1]} iterations can help: {seen}{_stat_tail(r)}"
    elif verdict == CONTRADICTED:
        why = (f"the runs should stop before {short}, the opposite of the claim: past it they fit the noise, "
               f"so {REPORT_BUDGETS[1]} iterations cannot help: {seen}{_stat_tail(r)}")
    else:
        why = f"{why.split(':')[0]}: {seen}" + (_stat_tail(r) if r.n_pairs >= MIN_PAIRS else "")
    return _row(claim, metric, r, verdict, why, comparison)


# ---------------------------------------------------------------------------- StyleGAN
#
# The StyleGAN claims read the summaries of stylegan-interpolate and stylegan-traverse runs
# (see tasks/stylegan/jobs/*.py for the keys). Their units: one interpolation pair for the
# flip claim (endpoints shared by every space, so spaces pair up exactly), one run for the
# z-vs-w identity claim (z and w traverse the same latents), one run x space for the two
# one-sample claims. `stylegan_flips` / `stylegan_traversals` give the same tables to the
# dashboard's StyleGAN page.

# SSIM to the alpha = 0 image at or above this counts as "the same face"; below it identity
# is lost. 0.9 is where SSIM differences become plainly visible (a slight blur of a face
# already costs ~0.05); the report's "looks very different" is far below it.
IDENTITY_SSIM = 0.9
MIN_MONOTONE = 0.5  # the attribute must rise monotonically along at least this share of traversals


def _done(runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    if runs.empty or "kind" not in runs.columns:
        return runs.iloc[0:0]
    keep = runs["kind"] == kind
    if "status" in runs.columns:
        keep &= runs["status"] == vocab.DONE
    return runs[keep]


def stylegan_flips(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (done stylegan-interpolate run, pair, space): `run_id, pair, space, steps,
    flip_step, flip_frac` — the frame where the label first differs from frame 0's and that
    frame over (steps - 1); both NaN when the label never flips."""
    cols = ["run_id", "pair", "space", "steps", "flip_step", "flip_frac"]
    d = _done(runs, vocab.SG_INTERPOLATE)
    rows = []
    if not d.empty:
        steps = pd.to_numeric(summary_value(d, "steps"), errors="coerce")
        if "steps" in d.columns:  # the parameter, when the summary lacks it
            steps = steps.fillna(pd.to_numeric(d["steps"], errors="coerce"))
        keys = [(c, *k) for c in d.columns if (k := vocab.parse_flip_step_key(c))]
        for col, space, pair in keys:
            ran = pd.to_numeric(summary_value(d, space_key(space, "flip_rate")), errors="coerce").notna()
            for idx in d.index[ran.to_numpy()]:
                k = steps.loc[idx]
                f = pd.to_numeric(pd.Series([d.at[idx, col]]), errors="coerce").iloc[0]
                rows.append({"run_id": d.at[idx, "run_id"], "pair": pair, "space": space, "steps": k,
                             "flip_step": f, "flip_frac": f / (k - 1) if k and k > 1 else np.nan})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["run_id", "pair", "space"], kind="stable").reset_index(drop=True)


def stylegan_traversals(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (done stylegan-traverse run, space) with `TRAVERSE_KEYS` (NaN where absent)."""
    d = _done(runs, vocab.SG_TRAVERSE)
    rows = []
    for space in LATENT_SPACES:
        has = pd.to_numeric(summary_value(d, space_key(space, "prob_delta")), errors="coerce").notna()
        part = d[has.to_numpy()] if len(d) else d
        for idx in part.index:
            row = {"run_id": part.at[idx, "run_id"], "space": space}
            for key in TRAVERSE_KEYS:
                v = summary_value(part, space_key(space, key)).loc[idx]
                row[key] = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
            rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "space", *TRAVERSE_KEYS])


def _from_diffs(factor: str, a: Any, b: Any, metric: str, diffs: Sequence[float], higher_is_better: bool,
                pairs: pd.DataFrame | None = None) -> PairedResult:
    """A `PairedResult` from ready-made differences a − b (the same numbers `stats.paired` gives)."""
    r = PairedResult(factor, a, b, metric, higher_is_better)
    x = np.asarray(diffs, dtype=float)
    x = x[np.isfinite(x)]
    r.n_pairs = int(x.size)
    r.pairs = pd.DataFrame() if pairs is None else pairs
    if x.size:
        r.mean_diff, r.lo, r.hi = bootstrap_ci(x)
        better = x > 0 if higher_is_better else x < 0
        r.win_rate = float((better + 0.5 * (x == 0)).mean())
        r.p_value = wilcoxon_p(x)
    return r


def _stat_tail(r: PairedResult) -> str:
    p = "n/a" if r.p_value is None else f"{r.p_value:.2g}"
    ci = "" if not np.isfinite(r.lo) else f" (95% CI {r.lo:+.3g} to {r.hi:+.3g})"
    return f"; difference {r.mean_diff:+.3g}{ci}, Wilcoxon p={p}"


def _min_rank_pairs(alpha: float = ALPHA) -> int:
    """The fewest nonzero differences with which a two-sided signed-rank test can reach p < alpha
    (the exact p is at least 2 / 2**n): 6 at alpha 0.05."""
    return int(np.floor(np.log2(2 / alpha))) + 1


def _row(claim: Claim, metric: str, r: PairedResult, verdict: str, explanation: str, comparison: str) -> dict:
    if verdict == NOT_ENOUGH and MIN_PAIRS <= r.n_pairs < _min_rank_pairs():
        explanation += (f" (with fewer than {_min_rank_pairs()} values a signed-rank test cannot reach "
                        f"p < {ALPHA}: run more seeds)")
    row = make_row(claim, metric, r, verdict, explanation)
    row["comparison"] = comparison
    return row


def _mean(x) -> float:
    x = pd.to_numeric(pd.Series(x, dtype=object), errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _fmt(v: float, spec: str = ".2f") -> str:
    return "n/a" if v is None or not np.isfinite(v) else format(v, spec)


def _per_space(t: pd.DataFrame, column: str, spec: str = ".2f") -> str:
    """"z 0.81, w 0.93": the mean of `column` per latent space present in `t`."""
    return ", ".join(f"{s} {_fmt(_mean(t.loc[t['space'] == s, column]), spec)}" for s in LATENT_SPACES
                     if (t["space"] == s).any())


def _z_flips_sooner(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per pair: the flip fraction along z (mean of lerp and slerp where both ran) minus along
    w lerp; lower is sooner. Pairs that never flip in one of the two are left out."""
    metric = "flip_frac"
    flips = stylegan_flips(runs)
    comparison = "z (lerp, slerp) vs w_lerp, same endpoints (lower flip_frac = sooner)"
    if flips.empty:
        r = _from_diffs("space", "z", "w_lerp", metric, [], False)
        return _row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-interpolate runs with flip steps", comparison)
    wide = flips.pivot_table(index=["run_id", "pair"], columns="space", values="flip_frac", aggfunc="first",
                             dropna=False)
    z_cols = [c for c in Z_INTERP if c in wide.columns]
    if "w_lerp" not in wide.columns or not z_cols:
        r = _from_diffs("space", "z", "w_lerp", metric, [], False)
        return _row(claim, metric, r, NOT_ENOUGH, "needs interpolations in w_lerp and in z_lerp or z_slerp "
                    f"(found {', '.join(sorted(set(flips['space'])))})", comparison)
    z = wide[z_cols].mean(axis=1, skipna=False)
    both = z.notna() & wide["w_lerp"].notna()
    pairs = pd.DataFrame({"z": z[both], "w_lerp": wide.loc[both, "w_lerp"]}).reset_index()
    pairs["diff"] = pairs["z"] - pairs["w_lerp"]
    r = _from_diffs("space", "z", "w_lerp", metric, pairs["diff"], False, pairs)
    dropped = int((~both).sum())
    seen = (f"mean flip at {_fmt(_mean(pairs['z']), '.0%')} of the way along z "
            + "(" + ", ".join(f"{c} {_fmt(_mean(wide.loc[both, c]), '.0%')}" for c in z_cols) + ")"
            + f" vs {_fmt(_mean(pairs['w_lerp']), '.0%')} along w_lerp")
    counts = (f"z sooner in {int((pairs['diff'] < 0).sum())}, later in {int((pairs['diff'] > 0).sum())}, "
              f"same frame in {int((pairs['diff'] == 0).sum())} of {len(pairs)} pairs")
    extra = f"; {dropped} pair{'s' if dropped != 1 else ''} left out (no flip in one space)" if dropped else ""
    verdict, why = judge(r)
    if verdict == NOT_ENOUGH:
        tail = _stat_tail(r) if r.n_pairs >= MIN_PAIRS else ""
        why = f"{why.split(':')[0]}: {seen}; {counts}{extra}{tail}"
    else:
        head = "z flips sooner" if verdict == SUPPORTED else "w flips sooner, the opposite of the claim"
        why = f"{head}: {seen}; {counts}{extra}{_stat_tail(r)}"
    return _row(claim, metric, r, verdict, why, comparison)


_IDENTITY_METRICS = ("embed_dist_per_dprob", "ssim_loss_per_dprob", "pixel_dist_per_dprob")


def _w_keeps_features(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run: identity lost per unit of attribute change in w minus in z (lower keeps more)."""
    trav = stylegan_traversals(runs)
    wide = {m: trav.pivot_table(index="run_id", columns="space", values=m, aggfunc="first")
            for m in _IDENTITY_METRICS} if not trav.empty else {}
    metric = next((m for m in _IDENTITY_METRICS if m in wide and {"z", "w"} <= set(wide[m].columns)
                   and wide[m][["z", "w"]].notna().all(axis=1).any()), _IDENTITY_METRICS[1])
    comparison = f"w vs z on the same latents (lower {metric} = more of the original kept)"
    if trav.empty:
        r = _from_diffs("space", "w", "z", metric, [], False)
        return _row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    if metric not in wide or not {"z", "w"} <= set(wide[metric].columns):
        r = _from_diffs("space", "w", "z", metric, [], False)
        return _row(claim, metric, r, NOT_ENOUGH, "needs finished stylegan-traverse runs in both z and w", comparison)
    t = wide[metric][["z", "w"]].dropna()
    pairs = t.reset_index()
    pairs["diff"] = pairs["w"] - pairs["z"]
    r = _from_diffs("space", "w", "z", metric, pairs["diff"], False, pairs)
    seen = (f"identity lost per unit attribute change ({metric}): w {_fmt(_mean(t['w']), '.3g')} vs "
            f"z {_fmt(_mean(t['z']), '.3g')}, w lower in {int((pairs['diff'] < 0).sum())} of {len(pairs)} runs")
    ssim = trav.pivot_table(index="run_id", columns="space", values="ssim_at_max", aggfunc="first")
    if {"z", "w"} <= set(ssim.columns):
        seen += (f"; SSIM at ±alpha_max w {_fmt(_mean(ssim['w']))} vs z {_fmt(_mean(ssim['z']))} "
                 "(alpha in std units, the same move in both)")
    verdict, why = judge(r)
    if verdict == NOT_ENOUGH:
        tail = _stat_tail(r) if r.n_pairs >= MIN_PAIRS else ""
        why = f"{why.split(':')[0].replace('matched pair', 'traverse run')}: {seen}{tail}"
    else:
        head = "w keeps more" if verdict == SUPPORTED else "z keeps more, the opposite of the claim"
        why = f"{head}: {seen}{_stat_tail(r)}"
    return _row(claim, metric, r, verdict, why, comparison)


def _one_sample_counts(n: int) -> str:
    return f"only {n} run × space value{'s' if n != 1 else ''} (need {MIN_PAIRS})"


def _identity_lost(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run and space: IDENTITY_SSIM − SSIM at ±alpha_max; positive means identity lost."""
    metric = "ssim_at_max"
    trav = stylegan_traversals(runs)
    t = trav.dropna(subset=[metric]) if not trav.empty else trav
    diffs = (IDENTITY_SSIM - t[metric]) if len(t) else []
    r = _from_diffs(metric, "identity lost", "kept", metric, diffs, True, t)
    comparison = f"SSIM to the alpha=0 image at ±alpha_max vs {IDENTITY_SSIM} (difference = {IDENTITY_SSIM} − SSIM)"
    if t.empty:
        return _row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    per = _per_space(t, metric)
    dist = _per_space(t, "pixel_dist_at_max", ".3f")
    seen = (f"mean SSIM at ±alpha_max {_fmt(_mean(t[metric]))} ({per}; 1 = identical, identity counts as "
            f"kept at ≥ {IDENTITY_SSIM}); pixel RMSE {dist}; below {IDENTITY_SSIM} in "
            f"{int((t[metric] < IDENTITY_SSIM).sum())} of {len(t)}")
    if r.n_pairs < MIN_PAIRS:
        return _row(claim, metric, r, NOT_ENOUGH, f"{_one_sample_counts(r.n_pairs)}: {seen}", comparison)
    verdict, why = judge(r)
    if verdict == NOT_ENOUGH:
        why = f"not clearly below or above {IDENTITY_SSIM}: {seen}{_stat_tail(r)}"
    elif verdict == SUPPORTED:
        why = f"identity not preserved: {seen}{_stat_tail(r)}"
    else:
        why = f"identity preserved, the opposite of the claim: {seen}{_stat_tail(r)}"
    return _row(claim, metric, r, verdict, why, comparison)


def _traversals_work(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run and space: P(positive) at +alpha_max − at −alpha_max, against 0; supported also
    needs the probability to rise monotonically along at least MIN_MONOTONE of traversals."""
    metric = "prob_delta"
    trav = stylegan_traversals(runs)
    t = trav.dropna(subset=[metric]) if not trav.empty else trav
    r = _from_diffs(metric, "+alpha_max", "-alpha_max", metric, t[metric] if len(t) else [], True, t)
    comparison = "P(positive) at +alpha_max − at −alpha_max, against 0"
    if t.empty:
        return _row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    mono = _mean(t["prob_monotone_frac"])
    per = _per_space(t, metric, "+.2f")
    succ = _per_space(t, "success_rate", ".0%")
    seen = (f"mean probability change {_fmt(_mean(t[metric]), '+.2f')} ({per}); monotone along "
            f"{_fmt(mono, '.0%')} of traversals (need {MIN_MONOTONE:.0%}); crossed the threshold from below "
            f"to above: {succ}")
    if r.n_pairs < MIN_PAIRS:
        return _row(claim, metric, r, NOT_ENOUGH, f"{_one_sample_counts(r.n_pairs)}: {seen}", comparison)
    verdict, why = judge(r)
    if verdict == SUPPORTED and not (np.isfinite(mono) and mono >= MIN_MONOTONE):
        verdict, why = NOT_ENOUGH, f"the attribute moves on average but not steadily: {seen}{_stat_tail(r)}"
    elif verdict == NOT_ENOUGH:
        why = f"no significant change over {r.n_pairs} run × space values: {seen}{_stat_tail(r)}"
    elif verdict == SUPPORTED:
        why = f"the traversals change the attribute: {seen}{_stat_tail(r)}"
    else:
        why = f"the attribute moves against the direction, the opposite of the claim: {seen}{_stat_tail(r)}"
    return _row(claim, metric, r, verdict, why, comparison)


CLAIMS: list[Claim] = [
    Claim("depth2-sharper-denoise",
          "Denoising: depth 2 gives the sharpest images; at depth 4 they are blurrier, for both "
          "architectures and both noise levels (\"depth level seemingly impacts the clarity and "
          "sharpness of the image\").",
          "SSIM at the best-PSNR step: SSIM weighs local structure and contrast, which blur "
          "destroys, more than PSNR's squared error does. Seed architectures only.",
          factor="depth", better=2, worse=4, metric=("ssim_at_best", "best_ssim"),
          filter={"task": "denoise", "arch": list(SEED_ARCHS)}),
    Claim("depth2-sharper-inpaint",
          "Inpainting: \"Increasing the depth level resulted in more artifacts found in output "
          "images\"; depth 2 beats depth 4.",
          "SSIM at the best-PSNR step (as for denoising). Seed architectures only.",
          factor="depth", better=2, worse=4, metric=("ssim_at_best", "best_ssim"),
          filter={"task": "inpaint", "arch": list(SEED_ARCHS)}),
    Claim("sigma-0.5-worse",
          "\"When sigma=0.5, more image artifacts were found in the training results than when "
          "sigma=0.1.\"",
          "Best output PSNR against the clean image is lower at sigma 0.5 than at 0.1. This "
          "confirms the harder problem gives a worse result; it does not isolate artifacts.",
          factor="sigma", better=0.1, worse=0.5, metric="best_psnr", filter={"task": "denoise"}),
    Claim("loss-l2-beats-l1",
          "\"The best results, although blurry, were produced when L2 loss was used. L1 loss "
          "produced good results yet had additional artifacts.\"",
          "Best output PSNR, L2 vs L1 on matched runs (first half of the ordering L2 > L1 > KL).",
          factor="loss", better="l2", worse="l1", metric="best_psnr"),
    Claim("loss-l1-beats-kl",
          "\"The KL divergence performed poorly in comparison, only able to produce global "
          "features\"; L1 beats KL.",
          "Best output PSNR, L1 vs KL on matched runs (second half of the ordering L2 > L1 > KL).",
          factor="loss", better="l1", worse="kl", metric="best_psnr"),
    Claim("region-64-worse",
          "\"When the region size was set to 64x64 more artifacts were found in the output images "
          "than when the region size was set to 32x32.\"",
          "Best PSNR inside the hole (whole-image PSNR if hole PSNR was not recorded): a bigger "
          "hole lowers whole-image PSNR by its area alone, the hole PSNR asks how well it is filled.",
          factor="region", better=32, worse=64, metric=("best_psnr_hole", "best_psnr"),
          filter={"task": "inpaint"}),
    Claim("arch1-better-denoise",
          "\"The [first] CNN architecture performed better than the second ... There was "
          "noticeably more artifacts when less convolutional blocks were applied.\" (denoising)",
          "Best output PSNR, seed-double (architecture 1) vs seed-single (architecture 2) on "
          "denoising. The exact opposite of arch2-fewer-artifacts-denoise: at most one is supported.",
          factor="arch", better="seed-double", worse="seed-single", metric="best_psnr",
          filter={"task": "denoise"}),
    Claim("arch2-fewer-artifacts-denoise",
          "\"I noticed architecture two produced fewer artifacts than architecture one but "
          "results are inconclusive.\" (the denoising section)",
          "Best output PSNR, seed-single vs seed-double on denoising; contradicts "
          "arch1-better-denoise.",
          factor="arch", better="seed-single", worse="seed-double", metric="best_psnr",
          filter={"task": "denoise"}),
    Claim("arch1-better-inpaint",
          "Architecture 1 (two convolutions per level) performs better than architecture 2 "
          "(one), inpainting.",
          "Best PSNR inside the hole (whole-image PSNR if absent), seed-double vs seed-single.",
          factor="arch", better="seed-double", worse="seed-single",
          metric=("best_psnr_hole", "best_psnr"), filter={"task": "inpaint"}),
    Claim("more-iterations-help-sigma-0.5",
          "At noise 0.5, 1500 iterations improve on the 1000-iteration results (Figure 14).",
          "Final output PSNR at sigma 0.5, most vs fewest iterations in the store: the final "
          "(not best) PSNR, since the best over a longer run can only be as good or better.",
          factor="iterations", metric="final_psnr", filter={"sigma": 0.5},
          evaluator=_more_iterations),
    Claim("iterations-stop-after-1000",
          "At noise 0.5, 1500 iterations improve on the 1000-iteration results (Figure 14), i.e. the "
          "best stopping point lies past 1000 iterations.",
          "Where each run should stop, from what a user has: the early-stopping detectors' stop "
          "steps (median over the run's detectors; the oracle best_step, which needs the clean "
          "image, is shown beside them and used when no detector ran), minus 1000, over finished "
          "runs at sigma 0.5 that ran past 1000 iterations. Positive supports the claim.",
          factor="iterations", metric="stop_step", filter={"sigma": 0.5}, evaluator=_stop_after_1000),
    Claim("stylegan-z-flips-sooner",
          "\"While interpolating in the noise space the classification model changes its prediction "
          "... earlier than when interpolating in the style space\" (two steps in z, five in w; "
          "Figures 18–19).",
          "Where along the path the label first differs from the start's, as a fraction of the path, "
          "per interpolation pair: z (mean of lerp and slerp) minus w lerp between the same endpoint "
          "images; negative = z flips sooner. Pairs that never flip in one space are left out.",
          factor="space", better="z", worse="w_lerp", metric="flip_frac", higher_is_better=False,
          kind="stylegan-interpolate", evaluator=_z_flips_sooner),
    Claim("stylegan-w-keeps-features",
          "\"Style space works better than noise space, by maintaining more visual features from the "
          "original latent vector. Style space takes less drastic steps.\" (Figures 21–22)",
          "Identity lost per unit of attribute change along the SVM direction, w minus z on the same "
          "latents of one run: 1 − SSIM to the alpha=0 image summed over frames, divided by the summed "
          "change in P(positive) (an identity-embedding distance instead when the run had an "
          "identity model). Per unit of attribute change, so a space that barely moves the attribute "
          "does not win by barely moving. Negative = w keeps more.",
          factor="space", better="w", worse="z", metric=_IDENTITY_METRICS, higher_is_better=False,
          kind="stylegan-traverse", evaluator=_w_keeps_features),
    Claim("stylegan-identity-not-preserved",
          "\"Identity is not preserved when moving along these latent directions.\"",
          f"SSIM between the frames at ±alpha_max and the alpha=0 image, per run and space, against "
          f"{IDENTITY_SSIM}: at or above it the face counts as the same (a light blur already costs "
          f"~0.05 SSIM). Supported when SSIM is significantly below {IDENTITY_SSIM}.",
          factor="ssim_at_max", metric="ssim_at_max", kind="stylegan-traverse", evaluator=_identity_lost),
    Claim("stylegan-traversals-change-attribute",
          "\"The traversals were successful at generating an older and younger version of the original "
          "latent vector.\"",
          "P(positive) at +alpha_max minus at −alpha_max, per run and space, against 0; supported only "
          f"if the probability also rises monotonically along at least {MIN_MONOTONE:.0%} of the "
          "traversals. The success rate (below the threshold at −alpha_max, above at +alpha_max) is "
          "reported alongside.",
          factor="prob_delta", metric="prob_delta", kind="stylegan-traverse", evaluator=_traversals_work),
]


# ---------------------------------------------------------------------------- evaluation

def evaluate(runs: pd.DataFrame, claims: Sequence[Claim] | None = None) -> pd.DataFrame:
    """One row per claim: `COLUMNS`, with the numbers, a verdict and a readable explanation.

    `mean_diff` is better − worse as the claim names them, so a positive value (negative if
    lower is better) favours the claim. A claim whose evaluator fails gets "not enough data"
    and the error in its explanation, so one broken claim doesn't hide the others.
    """
    rows = []
    for claim in CLAIMS if claims is None else claims:
        subset = select(runs, claim)
        try:
            row = (claim.evaluator or evaluate_paired)(claim, subset)
        except Exception as exc:  # noqa: BLE001 - reported in the table instead
            row = make_row(claim, resolve_metric(claim, subset),
                           explanation=f"could not be evaluated: {type(exc).__name__}: {exc}")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def evaluate_paired(claim: Claim, runs: pd.DataFrame) -> dict:
    """The default check: `claim.better` vs `claim.worse` of `claim.factor`, matched."""
    metric = resolve_metric(claim, runs)
    result = paired(runs, metric, claim.factor, claim.better, claim.worse, claim.higher_is_better)
    verdict, explanation = judge(result)
    return make_row(claim, metric, result, verdict, explanation)


def select(runs: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """The runs a claim is about: its kind(s), its filter; a missing column selects nothing."""
    keep = np.ones(len(runs), dtype=bool)
    if claim.kind is not None:
        kinds = [claim.kind] if isinstance(claim.kind, str) else list(claim.kind)
        keep &= runs["kind"].isin(kinds).to_numpy() if "kind" in runs.columns else False
    for column, value in claim.filter.items():
        if column not in runs.columns:
            return runs.iloc[0:0]
        values = value if isinstance(value, (list, tuple, set)) else [value]
        keep &= np.logical_or.reduce([is_level(runs[column], v) for v in values])
    return runs[keep]


def resolve_metric(claim: Claim, runs: pd.DataFrame) -> str:
    """The claim's metric, or the first of its alternatives that has data in `runs`."""
    options = [claim.metric] if isinstance(claim.metric, str) else list(claim.metric)
    for name in options:
        if not usable(runs, name).empty:
            return name
    return options[0]


def judge(result: PairedResult, min_pairs: int = MIN_PAIRS, alpha: float = ALPHA) -> tuple[str, str]:
    """The verdict on "`result.a` beats `result.b`" and a sentence saying why."""
    n = result.n_pairs
    if n < min_pairs:
        why = f"only {n} matched pair{'s' if n != 1 else ''} (need {min_pairs})"
        if result.unmatched:
            why += f"; {result.unmatched} run{'s' if result.unmatched != 1 else ''} had no partner"
        return NOT_ENOUGH, why
    sign = 1 if result.higher_is_better else -1
    ci_clear = sign * result.lo > 0 or sign * result.hi < 0
    p_clear = result.p_value is not None and result.p_value < alpha
    numbers = _numbers(result)
    if not (ci_clear and p_clear):
        return NOT_ENOUGH, f"no significant difference over {n} pairs: {numbers}"
    if sign * result.mean_diff > 0:
        return SUPPORTED, f"{result.a} better: {numbers}"
    return CONTRADICTED, f"{result.b} better, the opposite of the claim: {numbers}"


def _numbers(r: PairedResult) -> str:
    p = "n/a" if r.p_value is None else f"{r.p_value:.2g}"
    return (f"mean difference {r.mean_diff:+.3g} (95% CI {r.lo:+.3g} to {r.hi:+.3g}), "
            f"{r.a} better in {r.win_rate:.0%} of {r.n_pairs} pairs, Wilcoxon p={p}")


def make_row(claim: Claim, metric: str, result: PairedResult | None = None,
             verdict: str = NOT_ENOUGH, explanation: str = "") -> dict:
    """A result row for `claim`; custom evaluators build theirs with this too."""
    direction = "higher" if claim.higher_is_better else "lower"
    r = result or PairedResult(claim.factor, claim.better, claim.worse, metric, claim.higher_is_better)
    levels = f"{r.a} vs {r.b}" if r.a is not None else "levels from the data"
    return {
        "claim": claim.id, "text": claim.text, "measure": claim.measure,
        "filter": describe_filter(claim), "comparison": f"{claim.factor} {levels} ({direction} {metric} is better)",
        "metric": metric, "n_pairs": r.n_pairs, "mean_diff": r.mean_diff, "lo": r.lo, "hi": r.hi,
        "win_rate": r.win_rate, "p_value": r.p_value, "verdict": verdict, "explanation": explanation,
    }


def describe_filter(claim: Claim) -> str:
    """The claim's selection as text, e.g. "kind=dip, task=denoise, arch in {seed-double, seed-single}"."""
    parts = [] if claim.kind is None else [
        f"kind={claim.kind}" if isinstance(claim.kind, str) else f"kind in {{{', '.join(claim.kind)}}}"]
    for column, value in claim.filter.items():
        if isinstance(value, (list, tuple, set)):
            parts.append(f"{column} in {{{', '.join(map(str, value))}}}")
        else:
            parts.append(f"{column}={value}")
    return ", ".join(parts) or "all runs"
