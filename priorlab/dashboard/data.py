"""Cached reads of the results store for the dashboard pages.

Every query is an `st.cache_data` function keyed on the store path and a *change token*: the
modification time and size of the database file and of its write-ahead log. In WAL mode every
commit grows or rewrites `priorlab.db-wal`, so the token changes exactly when a sweep writes
something, costs two `stat` calls, and lets a refreshing page reuse every cached frame until
then. A short TTL bounds memory; artifact bytes are content-addressed and cached longer, and
checked against their hash when read (a file whose bytes changed shows as "corrupted").

A store that cannot be read (a corrupt or truncated database, `priorlab.analysis.store.StoreError`)
is one line: `Data.error` for the pages' `guard`, and `app.py` catches what a read raises
later, so no page shows a traceback for it.

The store comes from `PRIORLAB_STORE` (set by `priorlab dashboard --store DIR|URL`), default
`results`, and its files from `PRIORLAB_ARTIFACTS` when they live elsewhere. A folder without
`priorlab.db` is shown as an empty store — the dashboard never creates a database. On a
PostgreSQL store the change token is the server's write-ahead-log position (one tiny query):
it moves when anything commits, so every dashboard, wherever it runs, sees every driver's
writes live.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from priorlab.analysis.runframe import missing
from priorlab.analysis.store import SchemaVersionError, Store, StoreError, is_db_url
from priorlab.dashboard import images
from priorlab.dashboard.widgets import md
from priorlab.vocab import DB_NAME, DONE, RUN_COLUMNS

STORE_ENV = "PRIORLAB_STORE"
ARTIFACTS_ENV = "PRIORLAB_ARTIFACTS"
DEFAULT_STORE = "results"
TTL_S = 120
DEFAULT_POLL_S = 2  # seconds between two looks at the change token (two `stat` calls)
EMPTY_MESSAGE = "No runs yet: run `priorlab sweep configs/dip_smoke.yaml`"
# The metrics the engine logs per step that the Compare page overlays, in this order.
CURVE_METRICS = ("psnr", "ssim", "loss", "psnr_ema")
# Distinct hues for up to six runs (Okabe–Ito, colour-blind safe): Streamlit's own theme
# starts with a dark and a light blue that are hard to tell apart.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#555555"]
# What a store read can raise when the database is corrupt, truncated or unreadable.
STORE_FAILURES = (StoreError, SchemaVersionError, sqlite3.DatabaseError, OSError)
LOWER_IS_BETTER = ("loss", "final_loss", "seconds", "wall_s", "best_step", "diverged_at")


def store_root() -> str:
    named = os.environ.get(STORE_ENV) or DEFAULT_STORE
    return named if is_db_url(named) else str(Path(named).expanduser().resolve())


def has_db(root: str) -> bool:
    return is_db_url(root) or (Path(root) / DB_NAME).is_file()


def change_token(root: str) -> tuple:
    """Cheap fingerprint of the store's committed state (see the module docstring)."""
    if is_db_url(root):  # never raises: the page watcher calls it while the server is away too
        try:
            return (_store(root).db.change_token(),)
        except Exception:
            return ("unreachable",)
    out = []
    for name in (DB_NAME, DB_NAME + "-wal"):
        try:
            s = os.stat(Path(root) / name)
            out += [s.st_mtime_ns, s.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


@st.cache_resource(show_spinner=False)
def _store(root: str) -> Store:
    # never writes, migrates or creates (see analysis.store)
    return Store(root, readonly=True, artifacts=os.environ.get(ARTIFACTS_ENV) or None)


def failure_line(e: BaseException, root: str) -> str:
    """One line for a store that cannot be read (StoreError's own message already is one)."""
    if isinstance(e, (StoreError, SchemaVersionError)):
        return str(e).strip().splitlines()[0] if str(e).strip() else f"cannot read the store at {root}"
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"cannot read the store at {Path(root) / DB_NAME}: {detail}"


@st.cache_data(ttl=TTL_S, max_entries=16, show_spinner=False)
def cached_runs(root: str, token: tuple) -> pd.DataFrame:
    """`Store.runs()` of the store at `root` as of `token` (`change_token`), cached: for cached
    computations keyed the same way (`computed`); pages use `Data.runs()`."""
    return _store(root).runs()


@st.cache_data(ttl=TTL_S, max_entries=16, show_spinner=False)
def _sweeps(root: str, token: tuple) -> pd.DataFrame:
    return _store(root).sweeps()


@st.cache_data(ttl=TTL_S, max_entries=64, show_spinner=False)
def _metrics(root: str, token: tuple, run_ids: tuple, names: tuple | None) -> pd.DataFrame:
    return _store(root).metrics(run_ids=list(run_ids), names=None if names is None else list(names))


@st.cache_data(ttl=TTL_S, max_entries=64, show_spinner=False)
def _artifacts(root: str, token: tuple, run_ids: tuple | None, names: tuple | None) -> pd.DataFrame:
    return _store(root).artifacts(run_ids=None if run_ids is None else list(run_ids),
                                  names=None if names is None else list(names))


@st.cache_data(ttl=3600, max_entries=4096, show_spinner=False)
def artifact_png(root: str, sha256: str) -> bytes | None:
    """The stored bytes of an artifact, cached, *not* checked against their hash (`Data.png` checks);
    None when missing. For cached helpers keyed by the store's root."""
    try:
        return _store(root).artifact_bytes(sha256)
    except (ValueError, OSError, StoreError):  # missing, unreadable or refused (a link, a FIFO)
        return None


@st.cache_data(ttl=TTL_S, max_entries=64, show_spinner=False)
def _sweep_configs(root: str, token: tuple, name: str) -> list[str]:
    return _store(root).sweep_configs(name)


class Data:
    """The store as one page run sees it: create one per script (or fragment) run."""

    def __init__(self, root: str | None = None):
        self.root = root or store_root()
        self.exists = has_db(self.root)
        self.token = change_token(self.root) if self.exists else ()
        self.error: str | None = None
        if self.exists:
            try:
                _store(self.root)
            except Exception as e:  # a corrupt or unreadable file, a server away: say so, don't crash
                self.error = failure_line(e, self.root)

    @property
    def usable(self) -> bool:
        return self.exists and self.error is None

    def runs(self) -> pd.DataFrame:
        if not self.usable:
            return _empty_runs()
        return cached_runs(self.root, self.token)

    def sweeps(self) -> pd.DataFrame:
        if not self.usable:
            return pd.DataFrame(columns=["name", "status", "n_runs"])
        return _sweeps(self.root, self.token)

    def metrics(self, run_ids: Iterable[str], names: Iterable[str] | None = None) -> pd.DataFrame:
        if not self.usable:
            return pd.DataFrame(columns=["run_id", "step", "name", "value"])
        return _metrics(self.root, self.token, tuple(run_ids), None if names is None else tuple(names))

    def artifacts(self, run_ids: Iterable[str] | None = None,
                  names: Iterable[str] | None = None) -> pd.DataFrame:
        if not self.usable:
            return pd.DataFrame(columns=["run_id", "step", "name", "sha256", "width", "height"])
        return _artifacts(self.root, self.token, None if run_ids is None else tuple(sorted(run_ids)),
                          None if names is None else tuple(names))

    def png(self, sha256: str | None) -> bytes | None:
        """The artifact's bytes when they match their hash, else None (missing or corrupted)."""
        if not sha256 or not self.usable or not isinstance(sha256, str):
            return None
        png = artifact_png(self.root, sha256)
        return png if images.verified(png, sha256) else None

    def image(self, sha256: str | None, size: tuple[int, int] = (64, 64)):
        """The artifact as an RGB image; None when missing; a "corrupted" placeholder of `size`
        when its bytes do not match their hash."""
        if not sha256 or not self.usable or not isinstance(sha256, str):
            return None
        return images.artifact_image(artifact_png(self.root, sha256), sha256, size)

    def sweep_configs(self, name: str) -> list[str]:
        """Every config text the sweep `name` ran with, oldest first ([] for an older store)."""
        if not self.usable:
            return []
        try:
            return _sweep_configs(self.root, self.token, name)
        except sqlite3.OperationalError:  # a schema-v1 store has no sweep_configs table
            return []


def _empty_runs() -> pd.DataFrame:
    df = pd.DataFrame(columns=list(RUN_COLUMNS))
    df.attrs["param_columns"] = []
    df.attrs["summary_columns"] = []
    return df


def clear_caches() -> None:
    for fn in (cached_runs, _sweeps, _metrics, _artifacts, artifact_png, _sweep_configs):
        fn.clear()


def guard(d: Data, *, need_runs: bool = True) -> pd.DataFrame:
    """The runs frame, or a friendly message and `st.stop()` when there is nothing to show."""
    if d.error:
        st.error(md(d.error), icon=":material/error:")
        st.stop()
    if not d.exists:
        st.info(f"{EMPTY_MESSAGE}  \n(no results store at {md(d.root)} yet; "
                "point the dashboard elsewhere with `priorlab dashboard --store DIR`)", icon=":material/inbox:")
        st.stop()
    runs = d.runs()
    if need_runs and runs.empty:
        st.info(f"{EMPTY_MESSAGE}  \n(the store at {md(d.root)} holds no runs yet)", icon=":material/inbox:")
        st.stop()
    return runs


# ---------------------------------------------------------------- frame helpers


def param_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.attrs.get("param_columns", []) if c in runs.columns]


def summary_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.attrs.get("summary_columns", []) if c in runs.columns]


def numeric_summary_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in summary_columns(runs) if pd.api.types.is_numeric_dtype(runs[c])
            and not pd.api.types.is_bool_dtype(runs[c]) and runs[c].notna().any()]


def hashable(v):
    """A cell value usable in nunique/set (lists and dicts as their repr)."""
    if isinstance(v, (list, dict)):
        return repr(v)
    return v


def varying(runs: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Those of `columns` with at least two distinct values (missing counts as a value)."""
    out = []
    for c in columns:
        col = runs[c]
        if col.dtype == object:
            col = col.map(hashable)
        if col.nunique(dropna=False) > 1:
            out.append(c)
    return out


def axes(runs: pd.DataFrame) -> list[str]:
    """The grid axes: parameters with two or more values among the runs of one kind (a
    parameter that only one kind has is not an axis just because it is missing elsewhere)."""
    params = param_columns(runs)
    out = set()
    for _, group in runs.groupby("kind", sort=False):
        out.update(c for c in params if c not in out and group[c].dropna().map(hashable).nunique() > 1)
    return [c for c in params if c in out]


def levels(series: pd.Series) -> list:
    """Sorted distinct values (Python scalars); missing values last as None."""
    s = series
    if s.dtype == object:
        s = s.map(hashable)
    vals = [v for v in pd.unique(s.dropna())]
    try:
        vals = sorted(vals)
    except TypeError:
        vals = sorted(vals, key=str)
    vals = [v.item() if isinstance(v, np.generic) else v for v in vals]
    if s.isna().any():
        vals.append(None)
    return vals


def is_in(series: pd.Series, values: Iterable) -> np.ndarray:
    """Rows whose value is one of `values` (None matches missing; list values by content)."""
    values = list(values)
    keep = [v for v in values if v is not None]
    col = series.map(hashable) if series.dtype == object else series
    hit = col.isin(keep).to_numpy(bool, copy=True) if keep else np.zeros(len(series), bool)
    if len(keep) < len(values):
        hit |= series.isna().to_numpy(bool)
    return hit


def fmt(v) -> str:
    """A parameter value as shown in labels and options."""
    if missing(v):
        return "none"
    if isinstance(v, dict):  # a classifier's settings: its keys in words, not a Python literal
        return "(" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + ")"
    if isinstance(v, (list, tuple)):  # detectors=[wmv, dp, rw], not a Python literal with quotes
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, float):  # a sampled lr: 0.00153041, not 0.0015304122616866657
        return f"{v:.6g}"
    return str(v)


def scoped(runs: pd.DataFrame, *, kind: str | None = None,
           statuses: Iterable[str] | None = (DONE,)) -> pd.DataFrame:
    """Runs of one kind and some statuses, with parameter columns that are all missing there
    dropped (and `attrs` updated) so the statistics see only that kind's axes."""
    df = runs
    if kind is not None:
        df = df[df["kind"] == kind]
    if statuses is not None:
        df = df[df["status"].isin(list(statuses))]
    params = [c for c in param_columns(runs) if df[c].notna().any()]
    summaries = [c for c in summary_columns(runs) if df[c].notna().any()]
    dropped = [c for c in param_columns(runs) + summary_columns(runs) if c not in params + summaries]
    df = df.drop(columns=dropped).reset_index(drop=True)
    df.attrs = {"param_columns": params, "summary_columns": summaries}
    return df


LABEL_MAX = 80  # characters of a run's label in a selector; the run id prefix keeps labels unique


def _label_part(col: pd.Series, name: str) -> pd.Series:
    """`name=value` per run. A parameter a run does not have (e.g. `region` of a denoising run)
    is left out, not "=none"; of a dict (a classifier's settings) only the keys that differ
    among the runs show, as `name.key=value`."""
    dicts = col[col.map(lambda v: isinstance(v, dict))]
    if dicts.empty:
        return col.map(lambda v: "" if missing(v) else f"{name}={fmt(v)}")
    keys = sorted({k for d in dicts for k in d})
    differ = [k for k in keys if len({hashable(d.get(k)) for d in dicts}) > 1]

    def text(v) -> str:
        if not isinstance(v, dict):
            return "" if missing(v) else f"{name}={fmt(v)}"
        return " ".join(f"{name}.{k}={fmt(v.get(k))}" for k in differ)
    return col.map(text)


def run_labels(runs: pd.DataFrame, columns: Iterable[str] | None = None, short: int = 8) -> pd.Series:
    """`run_id[:8] · arch=skip depth=2 …` over the given (default: varying parameter) columns,
    at most LABEL_MAX characters (a sweep varying a dozen parameters would give ~200)."""
    cols = list(columns) if columns is not None else varying(runs, param_columns(runs))
    if runs.empty:
        return pd.Series([], dtype=str)
    label = runs["run_id"].astype(str).str[:short]
    parts = [_label_part(runs[c], c) for c in cols]
    if parts:
        tail = pd.concat(parts, axis=1).agg(lambda r: " ".join(x for x in r if x), axis=1)
        label = label.where(tail == "", label + " · " + tail)
    label = label.map(lambda t: t if len(t) <= LABEL_MAX else t[: LABEL_MAX - 1].rstrip() + "…")
    return pd.Series(label.to_numpy(), index=runs["run_id"].to_numpy())


def without_metric_text(runs: pd.DataFrame, metric: str) -> str:
    """`; 2 of them have no best_psnr (left out)`, or "" when every run has it: a count of runs
    must not promise numbers that some of them (a photo with no clean copy) never had."""
    n = int(pd.to_numeric(runs[metric], errors="coerce").isna().sum()) if metric in runs.columns else len(runs)
    return f"; {n} of them {'has' if n == 1 else 'have'} no {metric} (left out)" if n else ""


def settings_text(run: pd.Series, columns: Iterable[str]) -> str:
    """`arch=skip depth=2` over `columns`, leaving out the ones the run does not have."""
    return " ".join(f"{c}={fmt(run[c])}" for c in columns if c in run.index and not missing(run[c]))


def latest_artifacts(arts: pd.DataFrame, name: str, step: int | None = None) -> pd.DataFrame:
    """Per run, the artifact `name` at the latest step ≤ `step` (latest overall when None)."""
    a = arts[arts["name"] == name]
    if step is not None:
        a = a[a["step"] <= step]
    if a.empty:
        return a
    return a.sort_values(["run_id", "step"]).groupby("run_id", sort=False).tail(1).set_index("run_id")


def higher_is_better(metric: str) -> bool:
    return not any(metric == m or metric.endswith("_" + m) for m in LOWER_IS_BETTER)


def refresh_interval() -> float | None:
    """Seconds between polls of the change token (the sidebar toggle), None when paused."""
    if st.session_state.get("auto_refresh", True):
        return float(st.session_state.get("refresh_s", DEFAULT_POLL_S))
    return None


@st.cache_data(ttl=TTL_S, max_entries=8, show_spinner=False)
def _labels(root: str, token: tuple) -> dict[str, str]:
    runs = cached_runs(root, token)
    return data_labels(runs)


def data_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Per kind: the run id's first 8 characters and the parameters that vary among the
    runs of that kind (missing values left out)."""
    out: dict[str, str] = {}
    params = param_columns(runs)
    for _, group in runs.groupby("kind", sort=False):
        cols = [c for c in varying(group, params) if group[c].notna().any()]
        # What a run's own sweep varies leads: with the whole store's axes first, the six runs of a
        # random search all read "task=denoise image=astronaut size=32 sigma=0.1 seed=0 arch=seed-doub…",
        # their lr cut off by the length cap.
        for _, part in (group.groupby("sweep", sort=False, dropna=False) if "sweep" in group.columns else [(None, group)]):
            own = varying(part, cols)
            out.update(run_labels(part, own + [c for c in cols if c not in own]).to_dict())
    return out


def labels(d: Data) -> dict[str, str]:
    """`{run_id: short label}` for every run (cached per store state)."""
    if not d.usable:
        return {}
    return _labels(d.root, d.token)
