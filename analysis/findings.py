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

from analysis.stats import PairedResult, is_level, paired, usable

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
        found = ", ".join(str(v) for v in levels) or "none"
        return make_row(claim, metric, explanation=(
            f"needs runs at two or more iteration budgets; found {found} among the selected runs"))
    return evaluate_paired(dataclasses.replace(claim, better=levels[-1], worse=levels[0]), runs)


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
