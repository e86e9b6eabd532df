"""A whole search at a glance: the numbers behind the Search page (and a notebook's).

- `search_axes`: the parameters a sweep varied among runs of one kind, each numeric or categorical,
  and on a log scale where the config drew it `loguniform` (`log_axes` reads the stored config
  texts) or, for a numeric axis, where its values span two decades or more.
- `parallel_frame`: one row per (run, axis) with the value placed on a 0..1 axis (log where the
  axis is log, levels evenly spaced for categories), for parallel coordinates.
- `brush`: the runs inside per-axis ranges / level sets (what a brushed chart selects).
- `importance`: which parameter mattered for a metric, by Optuna's own evaluators (PED-ANOVA by
  default, fANOVA on request), with a bootstrap interval over runs (PED-ANOVA's; fANOVA's refits
  are too slow for one). Optuna imports scikit-learn
  and scipy, never torch, and is imported only when asked.
- `curve_bands`: every run's curve of one metric grouped by a factor: per step, the group's mean
  and a 95% interval of that mean (t-based), with how many runs it rests on.
"""

from __future__ import annotations

import datetime
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

MAX_IMPORTANCE_RUNS = 500  # a seeded sample of this many runs feeds the evaluators (fANOVA is O(n log n) per tree)
# Bootstrap refits per evaluator. PED-ANOVA fits in ~20 ms, so ten resamples cost nothing;
# one fANOVA forest takes ~0.2-0.4 s on 500 runs (two shared cores), so ten refits would cost
# seconds on the Search page: fANOVA gives its point estimate only (no interval).
BOOTSTRAPS = {"ped-anova": 10, "fanova": 0}
# fANOVA's forest. Depth 6 leaves ~8 of 500 runs per leaf; depth 8 (~2 per leaf) fitted noise
# and cost 2.4x the time (its marginal variances walk every leaf) for the same importances
# within their seed-to-seed spread on bench_dashboard's 10k-run store.
FANOVA_TREES, FANOVA_DEPTH = 16, 6
CONTINUOUS_LEVELS = 8  # a numeric axis with more distinct values than this is a sampled range


_warming: list[threading.Thread] = []


def start_import() -> None:
    """Import Optuna's evaluators in a background thread (once per process). `optuna.importance`
    pulls in scikit-learn and scipy.stats (2-3 s cold), also for PED-ANOVA; started as a page
    opens, the import overlaps its store read and charts instead of following them
    (`importance` then waits on Python's import lock for the rest, never imports twice). Call it
    after the page's own imports: a package both threads import at once (narwhals, through
    altair and scikit-learn) can raise `_DeadlockError`."""
    import sys

    if _warming or "optuna.importance" in sys.modules:
        return

    def work() -> None:
        try:
            import optuna.importance  # noqa: F401
        except Exception:  # the page's own import reports it
            pass

    _warming.append(threading.Thread(target=work, name="priorlab-optuna-import", daemon=True))
    _warming[0].start()


def _hashable(v: Any) -> Any:
    return repr(v) if isinstance(v, (list, dict)) else v


def log_axes(config_texts: Iterable[str]) -> set[str]:
    """Grid axes that a stored sweep config draws from a `loguniform` range (top level or a group)."""
    out: set[str] = set()
    for text in config_texts:
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if not isinstance(cfg, dict):
            continue
        grids = [cfg.get("grid")] + [g.get("grid") for g in cfg.get("groups") or [] if isinstance(g, dict)]
        for grid in grids:
            if isinstance(grid, dict):
                out.update(a for a, v in grid.items() if isinstance(v, dict) and "loguniform" in v)
    return out


def _numeric(s: pd.Series) -> bool:
    vals = s.dropna()
    return len(vals) > 0 and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                 for v in vals)


def search_axes(runs: pd.DataFrame, log: Iterable[str] = ()) -> pd.DataFrame:
    """`DataFrame[axis, numeric, continuous, log, n_levels]` of the parameters that vary among
    `runs` (one kind's runs: a parameter missing from all of them is not an axis)."""
    log = set(log)
    rows = []
    for c in runs.attrs.get("param_columns", []):
        if c not in runs.columns:
            continue
        col = runs[c]
        vals = col.dropna().map(_hashable)
        n = vals.nunique()
        if n < 2:
            continue
        numeric = _numeric(col)
        is_log = numeric and (c in log or (n > 2 and vals.min() > 0 and vals.max() / vals.min() >= 100))
        # A log-uniform range is continuous however few samples it drew (six lr values of a
        # small search were shown as six categories, sorted as text).
        continuous = numeric and (c in log or n > CONTINUOUS_LEVELS)
        rows.append({"axis": c, "numeric": numeric, "continuous": continuous,
                     "log": bool(is_log), "n_levels": int(n)})
    return pd.DataFrame(rows, columns=["axis", "numeric", "continuous", "log", "n_levels"])


def _position(col: pd.Series, numeric: bool, log: bool) -> tuple[pd.Series, list]:
    """Each value's place on a 0..1 axis, and the axis's levels (categorical) or bounds (numeric)."""
    if numeric:
        x = pd.to_numeric(col, errors="coerce").astype(float)
        if log:
            x = np.log10(x.where(x > 0))
        lo, hi = x.min(), x.max()
        span = hi - lo if hi > lo else 1.0
        return (x - lo) / span, [lo, hi]
    keyed = col.map(lambda v: "none" if v is None or (isinstance(v, float) and v != v) else str(_hashable(v)))
    levels = sorted(keyed.unique(), key=str)
    where = {lv: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, lv in enumerate(levels)}
    return keyed.map(where).astype(float), levels


def parallel_frame(runs: pd.DataFrame, axes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Long form for parallel coordinates: `run_id, axis, order, pos (0..1), value (text), metric`;
    the metric itself is the last axis."""
    parts = []
    specs = list(axes.itertuples(index=False))
    for order, spec in enumerate(specs):
        pos, _ = _position(runs[spec.axis], spec.numeric, spec.log)
        parts.append(pd.DataFrame({"run_id": runs["run_id"].to_numpy(), "axis": spec.axis, "order": order,
                                   "pos": pos.to_numpy(), "value": texts(runs[spec.axis]).to_numpy()}))
    m = pd.to_numeric(runs[metric], errors="coerce").astype(float)
    pos, _ = _position(m, True, False)
    parts.append(pd.DataFrame({"run_id": runs["run_id"].to_numpy(), "axis": metric, "order": len(specs),
                               "pos": pos.to_numpy(), "value": m.map(_text).to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    out["metric"] = np.tile(m.to_numpy(), len(specs) + 1)
    return out


def axis_labels(pf: pd.DataFrame, max_labels: int = 12, min_gap: float = 0.05) -> pd.DataFrame:
    """The value labels to print on each parallel-coordinates axis: at most `max_labels`, none
    closer than `min_gap` of the axis to the one below (close values printed on top of each other,
    unreadable), the lowest and highest always among them."""
    ticks = pf.drop_duplicates(["axis", "value"]).dropna(subset=["pos"]).sort_values("pos")
    kept = []
    for _, g in ticks.groupby("axis", sort=False):
        if len(g) > max_labels:
            g = g.iloc[np.linspace(0, len(g) - 1, max_labels // 2).astype(int)]
        pos, keep, last = g["pos"].to_numpy(), [], -np.inf
        for k, p in enumerate(pos):
            if p - last >= min_gap:
                keep.append(k)
                last = p
        if len(keep) > 1 and pos[-1] - pos[keep[-1]] > 0 and pos[-1] - pos[keep[-2]] >= min_gap:
            keep[-1] = len(pos) - 1  # the top label names the highest value
        kept.append(g.iloc[keep])
    return pd.concat(kept) if kept else ticks


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _text(v: Any) -> str:
    if _missing(v):
        return "none"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_text(x) for x in v)
    return str(v)


def texts(col: pd.Series) -> pd.Series:
    """`col.map(_text)`, formatting each distinct value once: a sweep's axes have a handful of
    levels over thousands of runs, and the Search page formats every axis on every rerun."""
    try:
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
    except TypeError:  # unhashable values (list or dict parameters): one at a time
        return col.map(_text)
    table = np.array([_text(u) for u in uniques] + [_text(None)], dtype=object)
    return pd.Series(table[codes], index=col.index, dtype=object)  # code -1 (missing) -> "none"


def brush(runs: pd.DataFrame, ranges: Mapping[str, Any]) -> np.ndarray:
    """Rows inside every brush: `(lo, hi)` for a numeric axis, a list of level texts for a categorical one."""
    keep = np.ones(len(runs), bool)
    for axis, r in ranges.items():
        if axis not in runs.columns or r is None:
            continue
        if isinstance(r, tuple) and len(r) == 2:
            x = pd.to_numeric(runs[axis], errors="coerce")
            keep &= ((x >= r[0]) & (x <= r[1])).fillna(False).to_numpy(bool)
        else:
            keep &= texts(runs[axis]).isin([str(v) for v in r]).to_numpy(bool)
    return keep


# ---------------------------------------------------------------- parameter importance

def _distribution(col: pd.Series, spec) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if spec.continuous:
        lo, hi = float(col.min()), float(col.max())
        return FloatDistribution(lo, hi if hi > lo else lo + 1e-12, log=bool(spec.log and lo > 0))
    return CategoricalDistribution(sorted(texts(col).unique()))


def scored_axes(runs: pd.DataFrame, axes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of `axes` that take two or more values among the runs with `metric`: an axis only
    unscored runs vary (a no-reference photo's size and seed, next to runs on a clean image)
    explains nothing of the metric, yet drew an empty importance bar and a one-value slice."""
    ok = runs[pd.to_numeric(runs[metric], errors="coerce").notna()] if metric in runs.columns else runs.iloc[:0]
    return axes[[a in ok.columns and texts(ok[a].dropna()).nunique() > 1 for a in axes["axis"]]]


def importance(runs: pd.DataFrame, metric: str, axes: pd.DataFrame, *, higher_is_better: bool = True,
               method: str = "ped-anova", n_boot: int | None = None, seed: int = 0,
               max_runs: int = MAX_IMPORTANCE_RUNS) -> pd.DataFrame:
    """`DataFrame[axis, importance, lo, hi, n]`: each axis's share of the metric's variation
    (normalised to sum to 1), and a 95% bootstrap interval over runs; sorted, most important first.
    `method`: "ped-anova" (Optuna's PedAnovaImportanceEvaluator: fast) or "fanova" (its
    FanovaImportanceEvaluator, a random forest: slower). `n_boot`: resamples for the interval
    (default `BOOTSTRAPS[method]`; with none, lo and hi are NaN). Fewer than 4 runs or no axis: empty."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial, TrialState

    cols = ["axis", "importance", "lo", "hi", "n"]
    n_boot = BOOTSTRAPS.get(method, 10) if n_boot is None else n_boot
    ok = runs[pd.to_numeric(runs[metric], errors="coerce").notna()] if metric in runs.columns else runs.iloc[:0]
    axes = scored_axes(ok, axes, metric)
    if len(ok) < 4 or axes.empty:
        return pd.DataFrame(columns=cols)
    rng = np.random.default_rng(seed)
    if len(ok) > max_runs:
        ok = ok.iloc[np.sort(rng.choice(len(ok), max_runs, replace=False))]
    specs = {s.axis: s for s in axes.itertuples(index=False)}
    dists = {a: _distribution(ok[a].dropna(), s) for a, s in specs.items()}
    values = pd.to_numeric(ok[metric], errors="coerce").astype(float).to_numpy()
    # A missing value stays None (not _text's "none"): the run is left out of that axis's split,
    # since the axis's distribution (built from the present values) has no such level.
    params = {a: (ok[a].astype(float).to_numpy() if specs[a].continuous
                  else ok[a].map(lambda v: None if _missing(v) else _text(v)).to_numpy())
              for a in specs}
    when = datetime.datetime(2000, 1, 1)  # Optuna asks a finished trial for times; none matter here
    trials = []
    for i in range(len(ok)):
        p = {}
        for a in specs:
            v = params[a][i]
            if v is None or (isinstance(v, float) and v != v):
                continue  # a run without this axis (another task's parameter): left out of its split
            p[a] = float(v) if specs[a].continuous else v
        trials.append(FrozenTrial(number=i, trial_id=i, state=TrialState.COMPLETE, value=float(values[i]),
                                  datetime_start=when, datetime_complete=when, params=p,
                                  distributions={a: dists[a] for a in p}, user_attrs={}, system_attrs={},
                                  intermediate_values={}))

    direction = StudyDirection.MAXIMIZE if higher_is_better else StudyDirection.MINIMIZE

    def evaluate(sample: list) -> dict[str, float]:
        ev = (FanovaImportanceEvaluator(seed=seed, n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH) if method == "fanova"
              else PedAnovaImportanceEvaluator())
        names = [a for a in specs if any(a in t.params for t in sample)]
        try:
            raw = ev.evaluate(_TrialSet(sample, direction), params=names)
        except AttributeError:  # an Optuna that asks a study for more than _TrialSet answers
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            study = optuna.create_study(direction=direction.name.lower())
            study.add_trials(sample)
            raw = ev.evaluate(study, params=names)
        total = sum(max(0.0, float(v)) for v in raw.values())
        return {a: (max(0.0, float(v)) / total if total > 0 else 0.0) for a, v in raw.items()}

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks PED-ANOVA experimental
        point = evaluate(trials)
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(trials), len(trials))
            sample = [trials[j] for j in idx]  # (the study copies each one: repeats are fine)
            try:
                boots.append(evaluate(sample))
            except (ValueError, RuntimeError):  # a resample with one level of every axis
                continue
    rows = []
    for a in specs:
        b = [x.get(a, 0.0) for x in boots]
        lo, hi = (float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975))) if len(b) >= 2 else (math.nan, math.nan)
        rows.append({"axis": a, "importance": point.get(a, 0.0), "lo": lo, "hi": hi, "n": len(ok)})
    return pd.DataFrame(rows, columns=cols).sort_values("importance", ascending=False, ignore_index=True)


class _TrialSet:
    """What Optuna's importance evaluators read from a study (its finished trials and its
    direction), without a study: `Study.add_trials` deep-copies every trial, which made a
    bootstrap of 500 runs take seconds."""

    def __init__(self, trials: list, direction):
        self._trials = trials
        self.directions = [direction]
        self.direction = direction

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(self, deepcopy: bool = True, states=None) -> list:
        return self._trials if states is None else [t for t in self._trials if t.state in states]


# ---------------------------------------------------------------- curves

def curve_bands(curves: pd.DataFrame, groups: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """`curves`: `DataFrame[run_id, step, value]` (one metric); `groups`: run_id -> level.
    Returns `DataFrame[level, step, mean, lo, hi, n]`: per level and step, the mean over runs
    and its 95% t-interval (lo = hi = mean for a single run)."""
    from scipy import stats

    g = pd.Series(groups)
    df = curves.assign(level=curves["run_id"].map(lambda r: _text(g.get(r))))
    agg = df.groupby(["level", "step"], sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    t = stats.t.ppf(0.975, np.maximum(agg["count"] - 1, 1))
    half = np.where(agg["count"] > 1, t * agg["std"].fillna(0) / np.sqrt(agg["count"]), 0.0)
    return pd.DataFrame({"level": agg["level"], "step": agg["step"], "mean": agg["mean"],
                         "lo": agg["mean"] - half, "hi": agg["mean"] + half, "n": agg["count"]})
