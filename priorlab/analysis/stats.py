"""Statistics over the runs table, for the dashboard's Analysis view and the Findings check.

Every function takes the `Store.runs()` DataFrame (one row per run) and a metric column.
Only runs with status "done" and a finite metric value count. Nothing here raises because
there is too little data: empty inputs give empty frames, NaN estimates and None p-values,
so a half-finished sweep can always be shown.

Confidence intervals are percentile bootstraps of the mean, seeded so that a page shows
the same numbers on every refresh, and vectorised so a 10k-run store answers in well under
a second. scipy is imported only when a p-value is needed (it costs ~1 s to import and the
dashboard must start fast).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from priorlab import vocab

DEFAULT_METRIC = "best_psnr"
# Without attrs["param_columns"], columns named like a summary metric are not parameters.
_SUMMARY_LIKE = re.compile(r"psnr|ssim|^(best|final|input)_|_step$|^(wall_s|iters_per_s|seconds|"
                           r"n_params|iterations_done|last_finite_step|device|stopped_by)$")
_BOOT_CHUNK = 2_000_000  # resampled values held in memory at once


# ---------------------------------------------------------------------------- bootstrap

def bootstrap_ci(values: Any, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """`(mean, lo, hi)`: the mean and its percentile-bootstrap confidence interval.

    NaNs are dropped. With no values all three are NaN; with one value the interval is
    NaN (a single run says nothing about spread, and a zero-width interval would claim it).
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, np.nan, np.nan)
    means = _boot_means(x, n_boot, seed)
    lo, hi = np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2])
    return (mean, float(lo), float(hi))


def _boot_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of `n_boot` resamples of `x`, drawn in chunks so memory stays bounded."""
    rng = np.random.default_rng(seed)
    n = x.size
    rows = max(1, _BOOT_CHUNK // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        k = min(rows, n_boot - start)
        out[start:start + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


# ---------------------------------------------------------------------------- selection

def usable(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The runs that count: status "done" (when there is a status) with a finite `metric`."""
    if metric not in runs.columns:
        return runs.iloc[0:0]
    keep = np.isfinite(pd.to_numeric(runs[metric], errors="coerce").to_numpy(dtype=float))
    if "status" in runs.columns:
        keep &= (runs["status"] == vocab.DONE).to_numpy()
    out = runs[keep].copy()
    out[metric] = pd.to_numeric(out[metric], errors="coerce").astype(float)
    return out


def param_columns(runs: pd.DataFrame) -> list[str]:
    """The parameter columns: `attrs["param_columns"]`, else a guess that skips bookkeeping and
    summary-like names (hand-made frames should set the attr)."""
    if "param_columns" in runs.attrs:
        return [c for c in runs.attrs["param_columns"] if c in runs.columns]
    summary = set(runs.attrs.get("summary_columns", ()))
    return [c for c in runs.columns
            if c not in vocab.RUN_COLUMNS and c not in summary and not _looks_like_summary(str(c))]


def _looks_like_summary(column: str) -> bool:
    return (bool(_SUMMARY_LIKE.search(column)) or column.startswith(vocab.SUMMARY_PREFIX)
            or vocab.parse_stop_key(column) is not None)


def is_level(column: pd.Series, level: Any) -> np.ndarray:
    """Rows where `column` equals `level`, forgiving "4" for 4 (levels often arrive as text
    from a URL or a select box) and matching None/NaN to missing values."""
    if _is_missing(level):
        return column.isna().to_numpy()
    hit = (column == level).to_numpy(dtype=bool, na_value=False)
    if not hit.any() and isinstance(level, str):
        number = pd.to_numeric(pd.Series([level]), errors="coerce").iloc[0]
        if pd.notna(number):
            hit = (column == number).to_numpy(dtype=bool, na_value=False)
    if not hit.any() and not isinstance(level, str):
        hit = (column.astype(str) == str(level)).to_numpy(dtype=bool)
    return hit


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _levels_sorted(values: pd.Series) -> list:
    """Distinct non-missing values, numbers in numeric order, otherwise as text."""
    uniq = pd.unique(values.dropna())
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


# ---------------------------------------------------------------------------- effects

def factor_effects(runs: pd.DataFrame, metric: str, factor: str, *, n_boot: int = 2000,
                   ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """`DataFrame[level, n, mean, lo, hi]`: the metric's mean per level of `factor`, with CI.

    These are marginal means over whatever else varies: fine for a balanced grid, but in an
    unbalanced store a level can look better because of what it was run with. `paired`
    answers the matched question.
    """
    d = usable(runs, metric)
    rows = []
    if factor in d.columns:
        for level in _levels_sorted(d[factor]):
            y = d.loc[is_level(d[factor], level), metric].to_numpy()
            mean, lo, hi = bootstrap_ci(y, n_boot, ci, seed)
            rows.append({"level": level, "n": int(y.size), "mean": mean, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["level", "n", "mean", "lo", "hi"])


_STATS = {"mean": "mean", "n": "size", "std": "std", "median": "median", "min": "min", "max": "max"}


def interaction(runs: pd.DataFrame, metric: str, f1: str, f2: str, stat: str = "mean") -> pd.DataFrame:
    """A table of the metric per combination: rows are levels of `f1`, columns levels of `f2`.

    `stat` is "mean" (the heatmap), "n" (how many runs back each cell, 0 where none), "std",
    "median", "min" or "max". Missing combinations are NaN (0 for "n").
    """
    if stat not in _STATS:
        raise ValueError(f"stat {stat!r} is not one of {', '.join(_STATS)}")
    d = usable(runs, metric)
    if f1 not in d.columns or f2 not in d.columns or f1 == f2:
        return pd.DataFrame()
    d = d.dropna(subset=[f1, f2])
    if d.empty:
        return pd.DataFrame()
    table = d.groupby([f1, f2])[metric].agg(_STATS[stat]).unstack(f2)
    table = table.reindex(index=_levels_sorted(d[f1]), columns=_levels_sorted(d[f2]))
    table.index.name, table.columns.name = f1, f2
    return table.fillna(0).astype(int) if stat == "n" else table


def leaderboard(runs: pd.DataFrame, metric: str, by: Sequence[str], higher_is_better: bool = True, *,
                n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """`DataFrame[rank, *by, n, mean, lo, hi]`: one row per combination of `by`, best first.

    Missing values of a `by` column form their own group (a denoising run has no region but
    still belongs on the board).
    """
    by = [by] if isinstance(by, str) else list(by)
    columns = ["rank", *by, "n", "mean", "lo", "hi"]
    d = usable(runs, metric)
    if not by or any(c not in d.columns for c in by) or d.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in d.groupby(by, dropna=False, sort=False):
        mean, lo, hi = bootstrap_ci(group[metric].to_numpy(), n_boot, ci, seed)
        rows.append({**dict(zip(by, key)), "n": len(group), "mean": mean, "lo": lo, "hi": hi})
    board = pd.DataFrame(rows).sort_values("mean", ascending=not higher_is_better, kind="stable")
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.reset_index(drop=True)[columns]


# ---------------------------------------------------------------------------- paired

@dataclass
class PairedResult:
    """A matched comparison of `factor` level `a` against level `b` on `metric`.

    `mean_diff` is a − b. `win_rate` is the share of pairs where a is better (ties count
    half). `p_value` is the Wilcoxon signed-rank test, None with < 2 pairs or all-zero
    differences. `matched_on` lists the parameters pairs agree on; `ignored` says which
    varying parameters were not matched on and why; `unmatched` counts the runs of either
    level that found no partner.
    """

    factor: str
    a: Any
    b: Any
    metric: str
    higher_is_better: bool = True
    n_pairs: int = 0
    mean_diff: float = np.nan
    lo: float = np.nan
    hi: float = np.nan
    win_rate: float = np.nan
    p_value: float | None = None
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    matched_on: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    unmatched: int = 0


def paired(runs: pd.DataFrame, metric: str, factor: str, a: Any, b: Any,
           higher_is_better: bool = True, *, n_boot: int = 2000, ci: float = 0.95,
           seed: int = 0) -> PairedResult:
    """Compare level `a` of `factor` with level `b` on runs matched on everything else.

    Runs are matched on every other parameter that varies among the compared runs (seed
    included; missing values, like the region of a denoising run, match each other). Two
    kinds of varying parameter cannot be matched on, and are ignored and reported instead:
    one that applies to only one level (missing throughout the other), and one that is fixed
    within each level but differs between them, i.e. a consequence of the factor (the
    snapshot steps of a 1500-iteration run). Several runs of one level in the same cell are
    averaged, so each matched cell is one pair.
    """
    result = PairedResult(factor, a, b, metric, higher_is_better)
    d = usable(runs, metric)
    if factor not in d.columns or d.empty:
        return result
    candidates = list(dict.fromkeys(c for c in param_columns(d) + ["kind"] if c in d.columns and c != factor))
    d = d[list(dict.fromkeys([*candidates, factor, metric, *(["run_id"] if "run_id" in d.columns else [])]))]
    d.attrs = {}  # pandas deep-copies attrs on every operation; they are not needed past here
    in_a, in_b = is_level(d[factor], a), is_level(d[factor], b)
    keep = in_a | in_b
    d, side = d[keep], np.where(in_a[keep], "a", "b")
    if d.empty:
        return result

    codes = {c: _codes(d[c]) for c in candidates}
    for c in codes:
        reason = _unmatchable(d[c], codes[c], side)
        if reason == "constant":
            continue
        if reason:
            result.ignored[c] = reason
        else:
            result.matched_on.append(c)

    cell = _cell_ids(codes, result.matched_on, len(d))
    y = d[metric].to_numpy()
    stats = (pd.DataFrame({"cell": cell, "side": side, "y": y})
             .groupby(["cell", "side"])["y"].agg(["mean", "size"]).unstack("side"))
    if ("mean", "a") not in stats.columns or ("mean", "b") not in stats.columns:
        result.unmatched = len(d)
        return result
    stats = stats.dropna(subset=[("mean", "a"), ("mean", "b")])
    result.pairs = _pairs_frame(d, cell, side, stats, result.matched_on)
    result.unmatched = int((~np.isin(cell, stats.index.to_numpy())).sum())
    _fill_numbers(result, result.pairs["diff"].to_numpy(), n_boot, ci, seed)
    return result


def _codes(column: pd.Series) -> np.ndarray:
    """Integer codes for matching: equal values share a code, all missing values share one.
    Lists and dicts (e.g. snapshot steps) are compared by content."""
    if column.dtype == object:
        column = column.map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v)
    return pd.factorize(column, use_na_sentinel=False)[0]


def _unmatchable(column: pd.Series, codes: np.ndarray, side: np.ndarray) -> str | None:
    """Why a parameter can't be matched on ("constant" if it doesn't vary), or None."""
    if np.unique(codes).size < 2:
        return "constant"
    missing = column.isna().to_numpy()
    is_a = side == "a"
    if missing[is_a].all() != missing[~is_a].all():
        return "applies to one level only"
    n_a, n_b = int(is_a.sum()), int((~is_a).sum())
    if (n_a >= 2 and n_b >= 2 and np.unique(codes[is_a]).size == 1
            and np.unique(codes[~is_a]).size == 1):
        return "follows the factor"
    return None


def _cell_ids(codes: dict[str, np.ndarray], on: list[str], n: int) -> np.ndarray:
    if not on:
        return np.zeros(n, dtype=np.int64)
    return pd.DataFrame({c: codes[c] for c in on}).groupby(on, sort=False).ngroup().to_numpy()


def _pairs_frame(d: pd.DataFrame, cell: np.ndarray, side: np.ndarray, stats: pd.DataFrame,
                 on: list[str]) -> pd.DataFrame:
    """One row per pair: the matched parameters, a representative run of each side, the
    (cell-averaged) values, their difference and how many runs were averaged."""
    cells = stats.index.to_numpy()
    first = pd.Series(np.arange(len(d))).groupby(cell).first()
    pairs = d.iloc[first.loc[cells].to_numpy()][on].reset_index(drop=True)
    if "run_id" in d.columns:
        ids = pd.DataFrame({"cell": cell, "side": side, "run_id": d["run_id"].to_numpy()})
        ids = ids.groupby(["cell", "side"])["run_id"].first().unstack("side")
        pairs["run_id_a"] = ids.loc[cells, "a"].to_numpy()
        pairs["run_id_b"] = ids.loc[cells, "b"].to_numpy()
    pairs["value_a"] = stats[("mean", "a")].to_numpy()
    pairs["value_b"] = stats[("mean", "b")].to_numpy()
    pairs["diff"] = pairs["value_a"] - pairs["value_b"]
    pairs["n_a"] = stats[("size", "a")].to_numpy().astype(int)
    pairs["n_b"] = stats[("size", "b")].to_numpy().astype(int)
    return pairs


def _fill_numbers(result: PairedResult, diff: np.ndarray, n_boot: int, ci: float, seed: int) -> None:
    result.n_pairs = int(diff.size)
    if diff.size == 0:
        return
    result.mean_diff, result.lo, result.hi = bootstrap_ci(diff, n_boot, ci, seed)
    better = diff > 0 if result.higher_is_better else diff < 0
    result.win_rate = float((better + 0.5 * (diff == 0)).mean())
    result.p_value = wilcoxon_p(diff)


def wilcoxon_p(diff: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences; None when undefined.

    Zero differences are dropped (Wilcoxon's convention). The exact null distribution is used
    up to 50 pairs without ties, the normal approximation otherwise: scipy's default for
    small samples with ties is a permutation test that takes seconds.
    """
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2 or not np.any(diff != 0):
        return None
    diff = diff[diff != 0]
    from scipy.stats import wilcoxon

    exact = diff.size <= 50 and np.unique(np.abs(diff)).size == diff.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(diff, method="exact" if exact else "asymptotic").pvalue)
        except ValueError:
            return None
    return p if np.isfinite(p) else None
