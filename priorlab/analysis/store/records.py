"""The store's writes: sweeps, run claims and lifecycle, metric and artifact rows.

Each write method is one transaction (`batch()`) and idempotent, keyed by (run, step, name),
so a retried trial or a resumed sweep never duplicates rows. `Writes` is a part of `Store`:
it needs `self.db` (a database with `batch()` and `reader()`), `self.files` and `self.where`.
The JSON helpers here are the one spelling of how parameters and summaries are stored.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from priorlab.analysis import claims
from priorlab.analysis.schema import STATUSES, is_postgres
from priorlab.vocab import DONE, RUNNING

REGISTER_LOCK = 0x7072696F726C6162 + 1  # PostgreSQL advisory lock: one registration at a time


def _now() -> float:
    return time.time()


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_clean(value: Any) -> Any:
    """JSON-ready copy: NaN/inf → None (strict JSON), numpy scalars → Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_clean(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return _finite_or_none(value)
    if hasattr(value, "item"):  # numpy scalar
        return _json_clean(value.item())
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_json_clean(value), sort_keys=False, allow_nan=False, separators=(",", ":"))


def _param_value(value: Any) -> Any:
    """A parameter as stored in `run_params.value` (an SQLite scalar)."""
    value = _json_clean(value)
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _run_name_filter(run_ids: Any, names: Any) -> tuple[str, list[str]]:
    """A WHERE clause (or "") selecting rows by run_id and/or name, with its arguments."""
    conds, args = [], []
    for col, values in (("run_id", run_ids), ("name", names)):
        values = _as_list(values)
        if values is not None:
            conds.append(f"{col} IN (SELECT value FROM json_each(?))")
            args.append(json.dumps([str(v) for v in values]))
    return (" WHERE " + " AND ".join(conds) if conds else ""), args


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    return status


def _as_list(value: Any) -> list | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _short_rows(stored: tuple[int, int], sent: tuple[int, int]) -> str | None:
    """Why a run's stored rows (metric rows, artifacts) fall short of what its trial sent, or None."""
    n_metrics, n_artifacts = stored
    if n_metrics >= sent[0] and n_artifacts >= sent[1]:
        return None
    return (f"only {n_metrics} of {sent[0]} metric rows and {n_artifacts} of {sent[1]} artifacts were stored "
            "(a write to the store failed or another attempt reset the run); rerun it")


class Writes:
    """The write half of `Store` (see its docstring for the run lifecycle)."""

    def upsert_sweep(self, name: str, config_text: str | None = None, host: str | None = None,
                     status: str = "running") -> None:
        """Create or update a sweep (keeps its first `created_at`; a None config/host keeps the
        stored one)."""
        _check_status(status)
        now = _now()
        with self.batch() as c:
            c.execute(
                """INSERT INTO sweeps(name, config, status, host, created_at, updated_at, finished_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET
                     config = COALESCE(excluded.config, sweeps.config), host = COALESCE(excluded.host, sweeps.host),
                     status = excluded.status,
                     updated_at = excluded.updated_at, finished_at = excluded.finished_at""",
                (name, config_text, status, host, now, now, None if status == "running" else now))
            if config_text is not None:
                c.execute("""INSERT INTO sweep_configs(sweep, config, added_at) VALUES (?, ?, ?)
                             ON CONFLICT DO NOTHING""",
                          (name, config_text, now))

    def sweep_configs(self, name: str) -> list[str]:
        """Every config text the sweep `name` has run with, oldest first."""
        with self.db.reader() as c:
            rows = c.execute("SELECT config FROM sweep_configs WHERE sweep = ? ORDER BY added_at",
                             (name,)).fetchall()
        return [r[0] for r in rows]

    def set_sweep_status(self, name: str, status: str) -> None:
        _check_status(status)
        now = _now()
        with self.batch() as c:
            cur = c.execute("UPDATE sweeps SET status = ?, updated_at = ?, finished_at = ? WHERE name = ?",
                            (status, now, None if status == "running" else now, name))
            if cur.rowcount == 0:
                raise KeyError(f"no sweep named {name!r} in {self.where}")

    # ------------------------------------------------------------------ writes: runs

    def register_runs(self, sweep: str, runs: Iterable[Mapping[str, Any]]) -> int:
        """Insert missing runs as `pending` and link every run to `sweep`; return how many were new.

        `runs`: `{"run_id", "kind", "params"}` mappings. Existing runs keep their status,
        parameters and rows (a done run is never downgraded); the sweep decides whether to
        rerun running/error/interrupted ones. A missing sweep row is created (`running`).
        """
        now = _now()
        run_rows, param_rows, link_rows = [], [], []
        for run in runs:
            run_id = str(run["run_id"])
            params = dict(run.get("params") or {})
            run_rows.append((run_id, str(run["kind"]), _dumps(params), now))
            param_rows.extend((run_id, str(k), self.db.param_value(v)) for k, v in params.items())
            link_rows.append((sweep, run_id, now))
        with self.batch() as c:
            if is_postgres(c):
                # Two drivers registering the same runs in different orders would each wait on a
                # row the other inserted: PostgreSQL aborts one ("deadlock detected"). Registering
                # is once per sweep, so take turns (SQLite has one writer anyway); the runs keep
                # the order they were given in (the runs table lists them so).
                c.execute(f"SELECT pg_advisory_xact_lock({REGISTER_LOCK})")
            c.execute("""INSERT INTO sweeps(name, status, created_at, updated_at)
                         VALUES (?, 'running', ?, ?) ON CONFLICT(name) DO NOTHING""", (sweep, now, now))
            new = c.executemany("""INSERT INTO runs(run_id, kind, params, status, created_at)
                                   VALUES (?, ?, ?, 'pending', ?) ON CONFLICT(run_id) DO NOTHING""",
                                run_rows).rowcount if run_rows else 0
            if param_rows:
                c.executemany("""INSERT INTO run_params(run_id, name, value) VALUES (?, ?, ?)
                                 ON CONFLICT DO NOTHING""", param_rows)
            if link_rows:
                c.executemany("""INSERT INTO sweep_runs(sweep, run_id, added_at) VALUES (?, ?, ?)
                                 ON CONFLICT DO NOTHING""", link_rows)
        return new

    def start_run(self, run_id: str, node: str | None = None, *, force: bool = False,
                  owner: str | None = None) -> bool:
        """Claim a registered run for `owner` (default: this process, see `claims.owner_id`):
        mark it `running` and delete the metric/artifact rows of any earlier attempt (artifact
        files are shared by content and stay). Returns True when claimed.

        False when the run is not this owner's to run now: `done` (unless `force`: two sweeps
        on one store each decide what to run when they start, so the other one may have
        finished it since), or `running` under another owner's live claim (another sweep is
        running it: never taken over, not even with `force`). The rule is `claims.CLAIM_SQL`,
        one conditional UPDATE, so no interleaving of writers can reset a run it protects.
        """
        owner = owner or claims.owner_id()
        with self.batch() as c:
            row = c.execute("SELECT owner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id!r} is not registered in {self.where}; "
                               "call register_runs first")
            cur = c.execute(claims.CLAIM_SQL, claims.claim_params(run_id, node, owner, force, row[0]))
            if cur.rowcount == 0:
                return False  # done and not forced, or another sweep's live claim
            c.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
        return True

    def renew_claims(self, owner: str) -> int:
        """Extend the lease of every run `owner` is running (`claims.Lease` calls it)."""
        with self.batch() as c:
            return c.execute(claims.RENEW_SQL, {"owner": owner,
                                                "lease_until": _now() + claims.LEASE_S}).rowcount

    def run_status(self, run_ids: Iterable[str]) -> dict[str, str]:
        """`{run_id: status}` of those of `run_ids` that are registered."""
        ids = json.dumps([str(r) for r in _as_list(run_ids)])
        with self.db.reader() as c:
            return dict(c.execute("SELECT run_id, status FROM runs WHERE run_id IN "
                                  "(SELECT value FROM json_each(?))", (ids,)).fetchall())

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None:
        """Scalars of one run at one step; re-logging a (step, name) replaces its value."""
        self.log_metrics_rows((run_id, step, name, value) for name, value in values.items())

    def log_metrics_many(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """Many `(step, name, value)` rows of one run in one transaction."""
        self.log_metrics_rows((run_id, step, name, value) for step, name, value in rows)

    def log_metrics_rows(self, rows: Iterable[tuple[str, int, str, float]]) -> None:
        """Many `(run_id, step, name, value)` rows, any runs, in one transaction (the fastest
        path: a writer actor should hand its whole queued batch here)."""
        def clean():
            for run_id, step, name, value in rows:
                value = None if value is None else float(value)
                yield run_id, int(step), name, value if value == value else None  # NaN → NULL
        with self.batch() as c:
            c.executemany("""INSERT INTO metrics(run_id, step, name, value) VALUES (?, ?, ?, ?)
                             ON CONFLICT(run_id, name, step) DO UPDATE SET value = excluded.value""",
                          clean())

    def log_artifact(self, run_id: str, step: int, name: str, png: bytes) -> str:
        """Store a PNG (file first, atomically; once per content) and its row; return its sha256."""
        return self.log_artifacts_many(run_id, [(step, name, png)])[0]

    def log_artifacts_many(self, run_id: str, items: Iterable[tuple[int, str, bytes]]) -> list[str]:
        """Many `(step, name, png)` artifacts of one run; their rows in one transaction."""
        items = list(items)
        put = self.files.put_artifacts([png for _, _, png in items])  # object storage: concurrently
        rows = [(run_id, int(step), name, sha, width, height)
                for (step, name, _), (sha, width, height) in zip(items, put)]
        self.log_artifact_rows(rows)
        return [r[3] for r in rows]

    def log_artifact_rows(self, rows: Iterable[tuple[str, int, str, str, int, int]]) -> None:
        """Rows `(run_id, step, name, sha256, width, height)` of artifacts whose files are stored
        already (`files.put_artifacts`), any runs, in one transaction."""
        with self.batch() as c:
            c.executemany("""INSERT INTO artifacts(run_id, step, name, sha256, width, height)
                             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, step, name) DO UPDATE SET
                             sha256 = excluded.sha256, width = excluded.width, height = excluded.height""",
                          rows)

    def put_file(self, png: bytes) -> tuple[str, int, int]:
        """Write an artifact file if its content is not stored yet; return (sha256, width, height).
        No database row: `log_artifact` adds that."""
        return self.files.put_artifact(png)

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any] | None = None,
                   error: str | None = None, *, owner: str | None = None,
                   sent: tuple[int, int] | None = None) -> bool:
        """Final status, summary and error of a run, in one transaction; True when written.

        Call it after the run's last metric and artifact are written (a writer that batches
        should put them in the same `batch()`), so `done` implies complete rows. A summary
        that says `{"status": "diverged"}` (the task contract for NaN losses) turns `done` into
        `diverged`; that key is then dropped from the stored summary (it is the run's status).
        `summary=None` leaves the stored summary as it is.

        `owner`: the claim's owner; when another owner has claimed the run since (this one's
        lease lapsed), nothing is written and False returned. `sent`: how many distinct metric
        rows and artifacts the run's trial sent; they are kept with the run, and a finished
        run with fewer stored rows becomes an `error` saying so (a write was lost), never `done`.
        """
        _check_status(status)
        if summary is not None:
            summary = dict(summary)
            if summary.get("status") in STATUSES:
                said = summary.pop("status")
                if status == "done":
                    status = said
        with self.batch() as c:
            # One statement (a round trip on PostgreSQL): is the run registered, and what is stored.
            stored = c.execute("""SELECT (SELECT COUNT(*) FROM metrics WHERE run_id = :run_id),
                                         (SELECT COUNT(*) FROM artifacts WHERE run_id = :run_id)
                                  FROM runs WHERE run_id = :run_id""", {"run_id": run_id}).fetchone()
            if stored is None:
                raise KeyError(f"run {run_id!r} is not registered in {self.where}")
            if sent is not None and status != "error":
                short = _short_rows(tuple(stored), sent)
                if short:
                    status, error = "error", short
            cur = c.execute(
                f"""UPDATE runs SET status = :status, summary = COALESCE(:summary, summary),
                                    error = :error, finished_at = :now, lease_until = NULL,
                                    sent_metrics = COALESCE(:n_metrics, sent_metrics),
                                    sent_artifacts = COALESCE(:n_artifacts, sent_artifacts)
                    WHERE run_id = :run_id AND {claims.FENCE}""",
                {"status": status, "summary": None if summary is None else _dumps(summary), "error": error,
                 "now": _now(), "run_id": run_id, "owner": owner,
                 "n_metrics": None if sent is None else int(sent[0]),
                 "n_artifacts": None if sent is None else int(sent[1])})
            return cur.rowcount > 0

    def mark_unfinished(self, run_ids: Iterable[str], status: str = "interrupted",
                        error: str | None = None, *, owner: str | None = None) -> int:
        """Set `status` (and `error`, when given) on those of `run_ids` that are `running`
        (after Ctrl-C, a crash, or a trial whose process died); pending and finished runs are
        left alone, and with `owner` so are runs another live owner claimed (another sweep is
        running them; a dead or lapsed claim is marked). Returns how many changed."""
        _check_status(status)
        if status in (DONE, RUNNING):
            raise ValueError(f"mark_unfinished cannot set {status!r}")
        ids = json.dumps([str(r) for r in _as_list(run_ids)])
        with self.batch() as c:
            holders = [r[0] for r in c.execute("""SELECT DISTINCT owner FROM runs WHERE status = 'running'
                                                 AND run_id IN (SELECT value FROM json_each(?))""", (ids,))]
            cur = c.execute(
                f"""UPDATE runs SET status = :status, finished_at = :now, error = COALESCE(:error, error),
                                    lease_until = NULL
                    WHERE status = 'running' AND run_id IN (SELECT value FROM json_each(:ids))
                      AND {claims.STALE_OR_OWN}""",
                {"status": status, "now": _now(), "error": error, "ids": ids, "owner": owner,
                 "dead": claims.dead_owners(holders)})
            return cur.rowcount
