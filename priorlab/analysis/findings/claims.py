"""The claims engine: a `Claim` record, its check, the verdict and the result row.

Each claim says which runs it is about (`kind`, `filter`), which factor levels it says differ
(`better` vs `worse`) and on what metric. The default check is a matched comparison
(`stats.paired`): the better level's runs against the worse level's runs that agree on every
other varying parameter. A claim that is not a two-level comparison gives its own
`evaluator(claim, runs) -> dict` (the runs already selected); `claim_row` / `make_row` and
`assess` turn its numbers into the same row and verdict as everyone else's.

Verdicts are deliberately three: "supported" and "contradicted" need a paired difference
whose bootstrap CI excludes 0 *and* a Wilcoxon p below `ALPHA` (the percentile bootstrap is
too narrow for a handful of pairs, the rank test guards it); anything short of that is "not
enough data", with the explanation saying whether pairs were missing or the difference
was not significant. An explanation is built from parts (`Judgement.reason`, the numbers,
what the evaluator saw), never by cutting up another sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis.stats import PairedResult, bootstrap_ci, is_level, paired, usable, wilcoxon_p

SUPPORTED, CONTRADICTED, NOT_ENOUGH = "supported", "contradicted", "not enough data"
MIN_PAIRS = 3
ALPHA = 0.05
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
    kind: str | tuple[str, ...] | None = vocab.DIP
    evaluator: Callable[["Claim", pd.DataFrame], dict] | None = None


def evaluate(runs: pd.DataFrame, claims: Sequence[Claim]) -> pd.DataFrame:
    """One row per claim: `COLUMNS`, with the numbers, a verdict and a readable explanation.

    `mean_diff` is better − worse as the claim names them, so a positive value (negative if
    lower is better) favours the claim. A claim whose evaluator fails gets "not enough data"
    and the error in its explanation, so one broken claim doesn't hide the others.
    """
    rows = []
    for claim in claims:
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


@dataclass(frozen=True)
class Judgement:
    """A verdict and why, in parts: `reason` ("only 2 matched pairs (need 3)", "no significant
    difference over 8 pairs", "seed-double better") and the paired `numbers` behind it."""

    verdict: str
    reason: str
    numbers: str = ""

    @property
    def explanation(self) -> str:
        return f"{self.reason}: {self.numbers}" if self.numbers else self.reason


def short_count(n: int, unit: str) -> str:
    """A count below what a verdict needs, in words: "no matched pairs" (not "only 0 …"),
    "only 1 matched pair", "only 2 matched pairs"."""
    return f"no {unit}s" if n == 0 else f"only {n} {unit}{'s' if n != 1 else ''}"


def assess(result: PairedResult, min_pairs: int = MIN_PAIRS, alpha: float = ALPHA,
           counted: str = "matched pair") -> Judgement:
    """The verdict on "`result.a` beats `result.b`"; `counted` names the unit a short count is in."""
    n = result.n_pairs
    if n < min_pairs:
        why = f"{short_count(n, counted)} (need {min_pairs})"
        if result.unmatched:
            why += f"; {result.unmatched} run{'s' if result.unmatched != 1 else ''} had no partner"
        return Judgement(NOT_ENOUGH, why)
    sign = 1 if result.higher_is_better else -1
    ci_clear = sign * result.lo > 0 or sign * result.hi < 0
    p_clear = result.p_value is not None and result.p_value < alpha
    numbers = _numbers(result)
    if not (ci_clear and p_clear):
        return Judgement(NOT_ENOUGH, f"no significant difference over {n} pairs", numbers)
    if sign * result.mean_diff > 0:
        return Judgement(SUPPORTED, f"{result.a} better", numbers)
    return Judgement(CONTRADICTED, f"{result.b} better, the opposite of the claim", numbers)


def judge(result: PairedResult, min_pairs: int = MIN_PAIRS, alpha: float = ALPHA) -> tuple[str, str]:
    """`(verdict, explanation)` of `assess`."""
    j = assess(result, min_pairs, alpha)
    return j.verdict, j.explanation


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


# ---------------------------------------------------------------------------- for evaluators

def from_diffs(factor: str, a: Any, b: Any, metric: str, diffs: Sequence[float], higher_is_better: bool,
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


def stat_tail(r: PairedResult) -> str:
    p = "n/a" if r.p_value is None else f"{r.p_value:.2g}"
    ci = "" if not np.isfinite(r.lo) else f" (95% CI {r.lo:+.3g} to {r.hi:+.3g})"
    return f"; difference {r.mean_diff:+.3g}{ci}, Wilcoxon p={p}"


def explain(r: PairedResult, j: Judgement, seen: str, supported: str, contradicted: str,
            not_enough: str | None = None) -> str:
    """A custom check's explanation from its parts: the head for the verdict (the claim's own words
    for a clear one; the judgement's reason, or `not_enough`, otherwise), what the check saw, and the
    statistics (left out when there were too few values to test)."""
    if j.verdict == NOT_ENOUGH:
        return f"{not_enough or j.reason}: {seen}" + (stat_tail(r) if r.n_pairs >= MIN_PAIRS else "")
    return f"{supported if j.verdict == SUPPORTED else contradicted}: {seen}{stat_tail(r)}"


def min_rank_pairs(alpha: float = ALPHA) -> int:
    """The fewest nonzero differences with which a two-sided signed-rank test can reach p < alpha
    (the exact p is at least 2 / 2**n): 6 at alpha 0.05."""
    return int(np.floor(np.log2(2 / alpha))) + 1


def claim_row(claim: Claim, metric: str, r: PairedResult, verdict: str, explanation: str, comparison: str) -> dict:
    if verdict == NOT_ENOUGH and MIN_PAIRS <= r.n_pairs < min_rank_pairs():
        explanation += (f" (with fewer than {min_rank_pairs()} values a signed-rank test cannot reach "
                        f"p < {ALPHA}: run more seeds)")
    row = make_row(claim, metric, r, verdict, explanation)
    row["comparison"] = comparison
    return row


def mean_of(x) -> float:
    x = pd.to_numeric(pd.Series(x, dtype=object), errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def fmt_value(v: float, spec: str = ".2f") -> str:
    return "n/a" if v is None or not np.isfinite(v) else format(v, spec)
