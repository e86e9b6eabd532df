"""The store's reads as pandas DataFrames (what notebooks, `priorlab runs` and the dashboard see).

Every read opens its own short-lived connection (`db.reader()`) and runs one SELECT, so it
sees one committed snapshot, from any process or thread at any time. `Reads` is a part of
`Store`: it needs `self.db`, `self.files` and `self.where`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from priorlab.analysis.schema import STATUSES
from priorlab.analysis.store.records import _as_list, _run_name_filter
from priorlab.vocab import PARAM_PREFIX, RUN_COLUMNS, SUMMARY_PREFIX
_TIME_COLUMNS = ("created_at", "started_at", "finished_at")


class Reads:
    """The read half of `Store`."""

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: name, status, host, config, times, n_runs and n_<status> per status."""
        counts = ", ".join(f"COALESCE(SUM(CASE WHEN r.status = '{s}' THEN 1 ELSE 0 END), 0) AS n_{s}"
                           for s in STATUSES)
        sql = f"""
            SELECT s.name, s.status, s.host, s.created_at, s.updated_at, s.finished_at, s.config,
                   COUNT(r.run_id) AS n_runs, {counts}
            FROM sweeps s
            LEFT JOIN sweep_runs sr ON sr.sweep = s.name
            LEFT JOIN runs r ON r.run_id = sr.run_id
            GROUP BY s.name ORDER BY s.created_at, s.name"""
        with self.db.reader() as c:
            cur = c.execute(sql)
            cols = [d[0] for d in cur.description]
            df = pd.DataFrame.from_records(cur.fetchall(), columns=cols)
        for col in ("created_at", "updated_at", "finished_at"):
            df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
        return df

    def runs(self, sweep: str | None = None, kind: str | Sequence[str] | None = None,
             status: str | Sequence[str] | None = None, *,
             where: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """One row per run: `RUN_COLUMNS`, then one column per parameter, then one per summary key.

        `sweep`: only that sweep's runs (the `sweep` column is then that name); without it a
        run in several sweeps appears once, its `sweep` a comma-joined sorted list.
        `kind`, `status`: a value or a list of values. `where`: `{param: value or [values]}`,
        answered from the indexed `run_params` table.
        `attrs["param_columns"]`, `attrs["summary_columns"]` name the expanded columns; a
        parameter named like a run column gets the prefix `param_`, a summary key named like
        either gets `summary_`. Times are UTC timestamps.
        """
        conds, args = [], []
        if sweep is None:
            sweep_sql = """(SELECT group_concat(sweep, ',') FROM
                              (SELECT sweep FROM sweep_runs x WHERE x.run_id = r.run_id ORDER BY sweep) AS q)"""
            join = ""
        else:
            sweep_sql, join = "sr.sweep", "JOIN sweep_runs sr ON sr.run_id = r.run_id AND sr.sweep = ?"
            args.append(sweep)
        for col, value in (("kind", kind), ("status", status)):
            values = _as_list(value)
            if values is not None:
                conds.append(f"r.{col} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        for name, value in (where or {}).items():
            values = [self.db.param_value(v) for v in ([None] if value is None else _as_list(value))]
            non_null = [v for v in values if v is not None]
            alts = []
            if non_null:
                alts.append(f"p.value IN ({', '.join('?' * len(non_null))})")
            if len(non_null) < len(values):
                alts.append("p.value IS NULL")
            conds.append(f"""r.run_id IN (SELECT p.run_id FROM run_params p
                                          WHERE p.name = ? AND ({' OR '.join(alts) or '1 = 0'}))""")
            args.extend([name, *non_null])
        sql = f"""SELECT r.run_id, {sweep_sql} AS sweep, r.kind, r.status, r.error, r.node, r.attempts,
                         r.created_at, r.started_at, r.finished_at, r.params, r.summary
                  FROM runs r {join}
                  {'WHERE ' + ' AND '.join(conds) if conds else ''}
                  ORDER BY r.rowid"""
        with self.db.reader() as c:
            rows = c.execute(sql, args).fetchall()
        return _runs_frame(rows)

    def counts(self, sweep: str | None = None) -> dict[str, int]:
        """`{status: number of runs}` for every status (zeros included), of one sweep or all."""
        if sweep is None:
            sql, args = "SELECT status, COUNT(*) FROM runs GROUP BY status", ()
        else:
            sql = """SELECT r.status, COUNT(*) FROM sweep_runs sr JOIN runs r ON r.run_id = sr.run_id
                     WHERE sr.sweep = ? GROUP BY r.status"""
            args = (sweep,)
        with self.db.reader() as c:
            found = dict(c.execute(sql, args).fetchall())
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def metrics(self, run_ids: Iterable[str] | None = None,
                names: Iterable[str] | None = None) -> pd.DataFrame:
        """`DataFrame[run_id, step, name, value]`, ordered by run_id, name, step."""
        where, args = _run_name_filter(run_ids, names)
        sql = f"SELECT run_id, step, name, value FROM metrics{where} ORDER BY run_id, name, step"
        with self.db.reader() as c:
            rows = c.execute(sql, args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=["run_id", "step", "name", "value"])
        return df.astype({"step": "int64", "value": "float64"})

    def artifacts(self, run_ids: Iterable[str] | None = None,
                  names: Iterable[str] | None = None) -> pd.DataFrame:
        """`DataFrame[run_id, step, name, sha256, width, height]`, ordered by run_id, step, name."""
        where, args = _run_name_filter(run_ids, names)
        sql = f"SELECT run_id, step, name, sha256, width, height FROM artifacts{where} ORDER BY run_id, step, name"
        with self.db.reader() as c:
            rows = c.execute(sql, args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=["run_id", "step", "name", "sha256", "width", "height"])
        return df.astype({"step": "int64", "width": "int64", "height": "int64"})

    def artifact_path(self, sha256: str) -> Path:
        """Where the file of `sha256` lives (whether or not it exists)."""
        return self.files.artifact_path(sha256)

    def artifact_bytes(self, sha256: str, *, verify: bool = False) -> bytes | None:
        """The PNG bytes of `sha256`, or None when the file is missing.

        `verify=True` hashes the bytes and raises `ArtifactCorrupt` (a `StoreError`) when they
        are not the content the name promises (a damaged file), so a viewer can say so instead
        of showing garbage or a broken image.
        """
        return self.files.read_artifact(sha256, verify=verify, hint=self.where)

    def artifact(self, run_id: str, name: str, step: int | None = None, *,
                 verify: bool = False) -> bytes | None:
        """PNG bytes of a run's artifact `name` at the latest step ≤ `step` (latest overall when
        `step` is None), or None. `verify`: as in `artifact_bytes`."""
        sql = "SELECT sha256 FROM artifacts WHERE run_id = ? AND name = ?"
        args: list = [run_id, name]
        if step is not None:
            sql += " AND step <= ?"
            args.append(int(step))
        with self.db.reader() as c:
            row = c.execute(sql + " ORDER BY step DESC LIMIT 1", args).fetchone()
        return None if row is None else self.artifact_bytes(row[0], verify=verify)

    def done_ids(self, run_ids: Iterable[str]) -> set[str]:
        """Those of `run_ids` whose status is `done`."""
        ids = json.dumps([str(r) for r in _as_list(run_ids)])
        with self.db.reader() as c:
            rows = c.execute("""SELECT run_id FROM runs WHERE status = 'done'
                                AND run_id IN (SELECT value FROM json_each(?))""", (ids,)).fetchall()
        return {r[0] for r in rows}

    def export_runs(self, path: str | os.PathLike, format: str | None = None,
                    sweep: str | None = None) -> Path:
        """Write `runs(sweep=sweep)` to CSV or Parquet (`format` defaults from the suffix, else csv)."""
        path = Path(path)
        if format is None:
            format = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet'; got {format!r}")
        df = self.runs(sweep=sweep)
        path.parent.mkdir(parents=True, exist_ok=True)
        if format == "csv":
            df.to_csv(path, index=False)
        else:
            df = df.copy()
            for col in df.columns[df.dtypes == object]:
                kinds = {type(v) for v in df[col] if v is not None and v == v}
                if len(kinds) > 1:  # mixed types: Parquet needs one type per column
                    df[col] = df[col].map(lambda v: None if v is None or v != v else str(v))
            df.to_parquet(path, index=False)
        return path

    @property
    def schema_version(self) -> int:
        return self.db.schema_version()


def _runs_frame(rows: list[tuple]) -> pd.DataFrame:
    n_base = len(RUN_COLUMNS)
    base = pd.DataFrame.from_records([r[:n_base] for r in rows], columns=list(RUN_COLUMNS))
    # One json.loads over a joined array is several times faster than one call per run.
    params = pd.DataFrame.from_records(
        json.loads("[" + ",".join(r[n_base] or "{}" for r in rows) + "]"), index=base.index)
    summary = pd.DataFrame.from_records(
        json.loads("[" + ",".join(r[n_base + 1] or "{}" for r in rows) + "]"), index=base.index)
    for col in _TIME_COLUMNS:
        base[col] = pd.to_datetime(base[col].astype("float64"), unit="s", utc=True)
    base["attempts"] = base["attempts"].astype("int64")
    taken = set(RUN_COLUMNS)
    params.columns = [PARAM_PREFIX + c if c in taken else c for c in params.columns]
    taken |= set(params.columns)
    summary.columns = [SUMMARY_PREFIX + c if c in taken else c for c in summary.columns]
    df = pd.concat([base, params, summary], axis=1) if rows else base
    df.attrs["param_columns"] = list(params.columns) if rows else []
    df.attrs["summary_columns"] = list(summary.columns) if rows else []
    return df
