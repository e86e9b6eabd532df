"""Cached statistics for the Analysis and Findings pages.

Each function is keyed on (store path, change token, scope, arguments) and reads the runs
through `data`'s own cache, so a rerun that changes nothing costs a dictionary lookup and a
store that gains a run recomputes only what is shown. The statistics themselves are
`priorlab.analysis.stats` / `priorlab.analysis.findings` (imported lazily: scipy is only needed for p-values).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.dashboard import data

TTL = data.TTL_S
SETTING_KEYS = ("image", "task", "sigma", "region", "region_place", "size", "seed")


def in_sweeps(runs: pd.DataFrame, sweeps: tuple) -> pd.DataFrame:
    """The runs of some sweeps; every run when `sweeps` is empty."""
    return runs[runframe.in_sweep(runs, sweeps)] if sweeps else runs


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def scope(root: str, token: tuple, kind: str | None, tasks: tuple = (), sweeps: tuple = ()) -> pd.DataFrame:
    """The runs one analysis is about: one kind, status done, optionally some tasks and some
    sweeps (none: every sweep); parameter columns with no value there are dropped. DIP runs get
    the per-run `stop_step`/`stop_gap` metrics; a continuous parameter (a sampled `lr`) is binned
    into a few ordered ranges (`attrs["binned"]` names those)."""
    from priorlab.analysis import choices

    runs = in_sweeps(data.cached_runs(root, token), sweeps)
    if tasks and "task" in runs.columns:
        runs = runs[runs["task"].isin(list(tasks))]
    out = data.scoped(runs, kind=kind, statuses=(vocab.DONE,))
    if kind == vocab.DIP:
        out = choices.with_stop_metrics(out)
    attrs = dict(out.attrs)
    out, attrs["binned"] = choices.binned(out, data.param_columns(out))
    out.attrs = attrs
    return out


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def effects(root: str, token: tuple, kind, tasks: tuple, sweeps: tuple, metric: str, factor: str) -> pd.DataFrame:
    from priorlab.analysis import stats

    return stats.factor_effects(scope(root, token, kind, tasks, sweeps), metric, factor)


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def interaction(root: str, token: tuple, kind, tasks: tuple, sweeps: tuple, metric: str, f1: str, f2: str):
    from priorlab.analysis import stats

    runs = scope(root, token, kind, tasks, sweeps)
    mean = stats.interaction(runs, metric, f1, f2)
    try:
        n = stats.interaction(runs, metric, f1, f2, stat="n")
    except TypeError:  # an older stats.interaction without `stat`
        n = None
    return mean, n


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def paired(root: str, token: tuple, kind, tasks: tuple, sweeps: tuple, metric: str, factor: str, a, b, higher: bool):
    from priorlab.analysis import stats

    return stats.paired(scope(root, token, kind, tasks, sweeps), metric, factor, a, b, higher_is_better=higher)


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def leaderboard(root: str, token: tuple, kind, tasks: tuple, sweeps: tuple, metric: str, by: tuple, higher: bool):
    from priorlab.analysis import stats

    return stats.leaderboard(scope(root, token, kind, tasks, sweeps), metric, list(by), higher_is_better=higher)


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def findings(root: str, token: tuple, sweeps: tuple = ()) -> pd.DataFrame:
    from priorlab.analysis import findings as f

    return f.evaluate(in_sweeps(data.cached_runs(root, token), sweeps))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def dip_vs_baselines(root: str, token: tuple, metric: str, sweeps: tuple = ()) -> pd.DataFrame:
    """Per setting (image, task, sigma, region, …) where classical baselines ran: the metric of
    each baseline method and the mean/best of each DIP architecture on the same setting.

    Long format: `setting…, method, n, mean, best`, `method` is "nlm"/"tv"/… for baselines
    and "dip:<arch>" for DIP.
    """
    runs = in_sweeps(data.cached_runs(root, token), sweeps)
    done = runs[(runs["status"] == "done") & runs[metric].notna()] if metric in runs.columns else runs.iloc[0:0]
    base = done[done["kind"] == "dip-baseline"]
    dip = done[done["kind"] == "dip"]
    cols = ["method", "n", "mean", "best"]
    if base.empty or dip.empty:
        return pd.DataFrame(columns=cols)
    # Match on the degradation: what both kinds have and that varies (a seed only counts
    # when the baselines have more than one, since a baseline's seed is only its noise draw).
    keys = [k for k in SETTING_KEYS if k in runs.columns and k in data.param_columns(runs)]
    keys = [k for k in keys if k != "seed" or base["seed"].nunique() > 1]
    out = []
    for setting, group in base.groupby(keys, dropna=False, sort=True):
        setting = setting if isinstance(setting, tuple) else (setting,)
        m = pd.Series(True, index=dip.index)
        for k, v in zip(keys, setting):
            m &= dip[k].isna() if pd.isna(v) else dip[k] == v
        row = dict(zip(keys, setting))
        for method, g in group.groupby("method"):
            out.append({**row, "method": str(method), "n": len(g), "mean": g[metric].mean(), "best": g[metric].max()})
        same = dip[m]
        arch_col = "arch" if "arch" in same.columns else None
        for arch, g in (same.groupby(arch_col) if arch_col else [("dip", same)]):
            if len(g):
                out.append({**row, "method": f"dip:{arch}", "n": len(g), "mean": g[metric].mean(),
                            "best": g[metric].max()})
    return pd.DataFrame(out, columns=keys + cols)
