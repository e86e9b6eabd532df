"""The seed report's StyleGAN claims: z against w along interpolations and traversals.

They read the summaries of stylegan-interpolate and stylegan-traverse runs through the tables
of `priorlab.analysis.stylegan` (which gives the same tables, and the page's plain answers, to
the dashboard). Their units: one interpolation pair for the flip claim (endpoints shared by
every space, so spaces pair up exactly), one run for the z-vs-w identity claim (z and w
traverse the same latents), one run x space for the two one-sample claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis.findings.claims import (
    MIN_PAIRS, NOT_ENOUGH, SUPPORTED, Claim, Judgement, assess, claim_row, explain, fmt_value, from_diffs, mean_of,
    short_count,
)
from priorlab.analysis import stylegan as tables
from priorlab.analysis.stylegan import IDENTITY_SSIM, MIN_MONOTONE
from priorlab.vocab import LATENT_SPACES, W_INTERP, Z_INTERP


def _per_space(t: pd.DataFrame, column: str, spec: str = ".2f") -> str:
    """"z 0.81, w 0.93": the mean of `column` per latent space present in `t`."""
    return ", ".join(f"{s} {fmt_value(mean_of(t.loc[t['space'] == s, column]), spec)}" for s in LATENT_SPACES
                     if (t["space"] == s).any())


def _z_flips_sooner(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per pair: the flip fraction along z (mean of lerp and slerp where both ran) minus along
    w lerp; lower is sooner. Pairs that never flip in one of the two are left out."""
    metric = "flip_frac"
    flips = tables.flips(runs)
    comparison = "z (lerp, slerp) vs w_lerp, same endpoints (lower flip_frac = sooner)"
    if flips.empty:
        r = from_diffs("space", "z", W_INTERP, metric, [], False)
        return claim_row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-interpolate runs with flip steps", comparison)
    wide = flips.pivot_table(index=["run_id", "pair"], columns="space", values="flip_frac", aggfunc="first",
                             dropna=False)
    z_cols = [c for c in Z_INTERP if c in wide.columns]
    if W_INTERP not in wide.columns or not z_cols:
        r = from_diffs("space", "z", W_INTERP, metric, [], False)
        return claim_row(claim, metric, r, NOT_ENOUGH, "needs interpolations in w_lerp and in z_lerp or z_slerp "
                    f"(found {', '.join(sorted(set(flips['space'])))})", comparison)
    z = wide[z_cols].mean(axis=1, skipna=False)
    both = z.notna() & wide[W_INTERP].notna()
    pairs = pd.DataFrame({"z": z[both], W_INTERP: wide.loc[both, W_INTERP]}).reset_index()
    pairs["diff"] = pairs["z"] - pairs[W_INTERP]
    r = from_diffs("space", "z", W_INTERP, metric, pairs["diff"], False, pairs)
    dropped = int((~both).sum())
    seen = (f"mean flip at {fmt_value(mean_of(pairs['z']), '.0%')} of the way along z "
            + "(" + ", ".join(f"{c} {fmt_value(mean_of(wide.loc[both, c]), '.0%')}" for c in z_cols) + ")"
            + f" vs {fmt_value(mean_of(pairs[W_INTERP]), '.0%')} along w_lerp")
    counts = tables.sooner_text("z", W_INTERP, int((pairs["diff"] < 0).sum()), int((pairs["diff"] > 0).sum()),
                                int((pairs["diff"] == 0).sum()), len(pairs))
    extra = f"; {dropped} pair{'s' if dropped != 1 else ''} left out (no flip in one space)" if dropped else ""
    j = assess(r)
    why = explain(r, j, f"{seen}; {counts}{extra}", "z flips sooner", "w flips sooner, the opposite of the claim")
    return claim_row(claim, metric, r, j.verdict, why, comparison)


_IDENTITY_METRICS = ("embed_dist_per_dprob", "ssim_loss_per_dprob", "pixel_dist_per_dprob")


def _w_keeps_features(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run: identity lost per unit of attribute change in w minus in z (lower keeps more)."""
    trav = tables.traversals(runs)
    wide = {m: trav.pivot_table(index="run_id", columns="space", values=m, aggfunc="first")
            for m in _IDENTITY_METRICS} if not trav.empty else {}
    metric = next((m for m in _IDENTITY_METRICS if m in wide and {"z", "w"} <= set(wide[m].columns)
                   and wide[m][["z", "w"]].notna().all(axis=1).any()), _IDENTITY_METRICS[1])
    comparison = f"w vs z on the same latents (lower {metric} = more of the original kept)"
    if trav.empty:
        r = from_diffs("space", "w", "z", metric, [], False)
        return claim_row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    if metric not in wide or not {"z", "w"} <= set(wide[metric].columns):
        r = from_diffs("space", "w", "z", metric, [], False)
        return claim_row(claim, metric, r, NOT_ENOUGH, "needs finished stylegan-traverse runs in both z and w", comparison)
    t = wide[metric][["z", "w"]].dropna()
    pairs = t.reset_index()
    pairs["diff"] = pairs["w"] - pairs["z"]
    r = from_diffs("space", "w", "z", metric, pairs["diff"], False, pairs)
    seen = (f"identity lost per unit attribute change ({metric}): w {fmt_value(mean_of(t['w']), '.3g')} vs "
            f"z {fmt_value(mean_of(t['z']), '.3g')}, w lower in {int((pairs['diff'] < 0).sum())} of {len(pairs)} runs")
    ssim = trav.pivot_table(index="run_id", columns="space", values="ssim_at_max", aggfunc="first")
    if {"z", "w"} <= set(ssim.columns):
        seen += (f"; SSIM at ±alpha_max w {fmt_value(mean_of(ssim['w']))} vs z {fmt_value(mean_of(ssim['z']))} "
                 "(alpha in std units, the same move in both)")
    j = assess(r, counted="traverse run")
    why = explain(r, j, seen, "w keeps more", "z keeps more, the opposite of the claim")
    return claim_row(claim, metric, r, j.verdict, why, comparison)


def _one_sample_counts(n: int) -> str:
    return f"{short_count(n, 'run × space value')} (need {MIN_PAIRS})"


def _identity_lost(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run and space: IDENTITY_SSIM − SSIM at ±alpha_max; positive means identity lost."""
    metric = "ssim_at_max"
    trav = tables.traversals(runs)
    t = trav.dropna(subset=[metric]) if not trav.empty else trav
    diffs = (IDENTITY_SSIM - t[metric]) if len(t) else []
    r = from_diffs(metric, "identity lost", "kept", metric, diffs, True, t)
    comparison = f"SSIM to the alpha=0 image at ±alpha_max vs {IDENTITY_SSIM} (difference = {IDENTITY_SSIM} − SSIM)"
    if t.empty:
        return claim_row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    per = _per_space(t, metric)
    dist = _per_space(t, "pixel_dist_at_max", ".3f")
    seen = (f"mean SSIM at ±alpha_max {fmt_value(mean_of(t[metric]))} ({per}; 1 = identical, identity counts as "
            f"kept at ≥ {IDENTITY_SSIM}); pixel RMSE {dist}; below {IDENTITY_SSIM} in "
            f"{int((t[metric] < IDENTITY_SSIM).sum())} of {len(t)}")
    if r.n_pairs < MIN_PAIRS:
        return claim_row(claim, metric, r, NOT_ENOUGH, f"{_one_sample_counts(r.n_pairs)}: {seen}", comparison)
    j = assess(r)
    why = explain(r, j, seen, "identity not preserved", "identity preserved, the opposite of the claim",
                  not_enough=f"not clearly below or above {IDENTITY_SSIM}")
    return claim_row(claim, metric, r, j.verdict, why, comparison)


def _traversals_work(claim: Claim, runs: pd.DataFrame) -> dict:
    """Per run and space: P(positive) at +alpha_max − at −alpha_max, against 0; supported also
    needs the probability to rise monotonically along at least MIN_MONOTONE of traversals."""
    metric = "prob_delta"
    trav = tables.traversals(runs)
    t = trav.dropna(subset=[metric]) if not trav.empty else trav
    r = from_diffs(metric, "+alpha_max", "-alpha_max", metric, t[metric] if len(t) else [], True, t)
    comparison = "P(positive) at +alpha_max − at −alpha_max, against 0"
    if t.empty:
        return claim_row(claim, metric, r, NOT_ENOUGH, "no finished stylegan-traverse runs", comparison)
    mono = mean_of(t["prob_monotone_frac"])
    per = _per_space(t, metric, "+.2f")
    succ = _per_space(t, "success_rate", ".0%")
    seen = (f"mean probability change {fmt_value(mean_of(t[metric]), '+.2f')} ({per}); monotone along "
            f"{fmt_value(mono, '.0%')} of traversals (need {MIN_MONOTONE:.0%}); crossed the threshold from below "
            f"to above: {succ}")
    if r.n_pairs < MIN_PAIRS:
        return claim_row(claim, metric, r, NOT_ENOUGH, f"{_one_sample_counts(r.n_pairs)}: {seen}", comparison)
    j = assess(r)
    not_enough = f"no significant change over {r.n_pairs} run × space values"
    if j.verdict == SUPPORTED and not (np.isfinite(mono) and mono >= MIN_MONOTONE):
        j, not_enough = Judgement(NOT_ENOUGH, j.reason, j.numbers), "the attribute moves on average but not steadily"
    why = explain(r, j, seen, "the traversals change the attribute",
                  "the attribute moves against the direction, the opposite of the claim", not_enough=not_enough)
    return claim_row(claim, metric, r, j.verdict, why, comparison)


STYLEGAN_CLAIMS: list[Claim] = [
    Claim("stylegan-z-flips-sooner",
          "\"While interpolating in the noise space the classification model changes its prediction "
          "... earlier than when interpolating in the style space\" (two steps in z, five in w; "
          "Figures 18–19).",
          "Where along the path the label first differs from the start's, as a fraction of the path, "
          "per interpolation pair: z (mean of lerp and slerp) minus w lerp between the same endpoint "
          "images; negative = z flips sooner. Pairs that never flip in one space are left out.",
          factor="space", better="z", worse=W_INTERP, metric="flip_frac", higher_is_better=False,
          kind=vocab.SG_INTERPOLATE, evaluator=_z_flips_sooner),
    Claim("stylegan-w-keeps-features",
          "\"Style space works better than noise space, by maintaining more visual features from the "
          "original latent vector. Style space takes less drastic steps.\" (Figures 21–22)",
          "Identity lost per unit of attribute change along the SVM direction, w minus z on the same "
          "latents of one run: 1 − SSIM to the alpha=0 image summed over frames, divided by the summed "
          "change in P(positive) (an identity-embedding distance instead when the run had an "
          "identity model). Per unit of attribute change, so a space that barely moves the attribute "
          "does not win by barely moving. Negative = w keeps more.",
          factor="space", better="w", worse="z", metric=_IDENTITY_METRICS, higher_is_better=False,
          kind=vocab.SG_TRAVERSE, evaluator=_w_keeps_features),
    Claim("stylegan-identity-not-preserved",
          "\"Identity is not preserved when moving along these latent directions.\"",
          f"SSIM between the frames at ±alpha_max and the alpha=0 image, per run and space, against "
          f"{IDENTITY_SSIM}: at or above it the face counts as the same (a light blur already costs "
          f"~0.05 SSIM). Supported when SSIM is significantly below {IDENTITY_SSIM}.",
          factor="ssim_at_max", metric="ssim_at_max", kind=vocab.SG_TRAVERSE, evaluator=_identity_lost),
    Claim("stylegan-traversals-change-attribute",
          "\"The traversals were successful at generating an older and younger version of the original "
          "latent vector.\"",
          "P(positive) at +alpha_max minus at −alpha_max, per run and space, against 0; supported only "
          f"if the probability also rises monotonically along at least {MIN_MONOTONE:.0%} of the "
          "traversals. The success rate (below the threshold at −alpha_max, above at +alpha_max) is "
          "reported alongside.",
          factor="prob_delta", metric="prob_delta", kind=vocab.SG_TRAVERSE, evaluator=_traversals_work),
]
