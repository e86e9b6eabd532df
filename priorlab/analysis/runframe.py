"""Reading the wide `Store.runs()` frame without knowing how it is built.

`runs()` is one row per run with the run columns, then a column per parameter, then a column
per summary key; a summary key whose name a parameter already took (stylegan-interpolate's
`steps`) is prefixed (`vocab.SUMMARY_PREFIX`), and `sweep` joins every sweep a run belongs
to. Readers ask these accessors instead of probing spellings or splitting the column.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from priorlab import vocab


def summary(runs: pd.DataFrame, key: str) -> pd.Series:
    """Summary key `key` of every run as a column (NaN where it is absent)."""
    for col in (vocab.SUMMARY_PREFIX + key, key):
        if col in runs.columns:
            return runs[col]
    return pd.Series(np.nan, index=runs.index)


def summary_number(runs: pd.DataFrame, key: str) -> pd.Series:
    """`summary` as floats (text and missing values become NaN)."""
    return pd.to_numeric(summary(runs, key), errors="coerce").astype(float)


def summary_key(column: str) -> str:
    """The summary key a column of `runs()` holds (its prefix, if the store gave it one, dropped)."""
    return column.removeprefix(vocab.SUMMARY_PREFIX)


def summary_of(run: pd.Series, key: str, default: Any = None) -> Any:
    """One run's summary value, `default` when it is absent or missing."""
    for col in (vocab.SUMMARY_PREFIX + key, key):
        if col in run.index and not missing(run[col]):
            return run[col]
    return default


def param_of(run: pd.Series, key: str, default: Any = None) -> Any:
    """One run's parameter value, `default` when it is absent or missing."""
    v = run.get(vocab.PARAM_PREFIX + key, run.get(key))
    return default if missing(v) else v


def missing(v: Any) -> bool:
    """None or a float NaN (what pandas puts where a run has no value). Asks about the value itself,
    so a list or dict (StyleGAN `spaces`, a classifier spec) is present, unlike `pd.isna`."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def sweeps_of(value: Any) -> list[str]:
    """The sweeps named in one `sweep` cell (a run belongs to every sweep that registered it)."""
    return [s for s in str(value).split(vocab.SWEEP_SEP) if s] if isinstance(value, str) else []


def sweep_names(runs: pd.DataFrame) -> list[str]:
    """Every sweep any of `runs` belongs to, sorted."""
    if "sweep" not in runs.columns:
        return []
    return sorted({s for v in runs["sweep"].dropna().unique() for s in sweeps_of(v)})


def in_sweep(runs: pd.DataFrame, names: str | Iterable[str]) -> pd.Series:
    """Rows of the runs that belong to `names` (one sweep or several)."""
    wanted = {names} if isinstance(names, str) else set(names)
    if "sweep" not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs["sweep"].map(lambda v: bool(wanted.intersection(sweeps_of(v)))).astype(bool)


def of_kind(runs: pd.DataFrame, kinds: str | Iterable[str], statuses: Iterable[str] | None = None) -> pd.DataFrame:
    """The runs of `kinds` (and of `statuses`, when given); a frame without the columns has none."""
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if runs.empty or "kind" not in runs.columns:
        return runs.iloc[0:0]
    keep = runs["kind"].isin(kinds)
    if statuses is not None and "status" in runs.columns:
        keep &= runs["status"].isin(list(statuses))
    return runs[keep]


def stalled(runs: pd.DataFrame, sweep_status: dict[str, str]) -> pd.Series:
    """Rows of the runs still pending or running whose every sweep has ended (interrupted or
    stopped): nothing will finish them until that sweep is run again."""
    if runs.empty or "status" not in runs.columns:
        return pd.Series(False, index=runs.index)

    def ended(v: Any) -> bool:
        names = sweeps_of(v)
        return bool(names) and all(sweep_status.get(n, vocab.RUNNING) != vocab.RUNNING for n in names)

    waiting = runs["status"].isin(vocab.WAITING)
    sweeps = runs["sweep"] if "sweep" in runs.columns else pd.Series(None, index=runs.index)
    return (waiting & sweeps.map(ended).astype(bool)).astype(bool)
