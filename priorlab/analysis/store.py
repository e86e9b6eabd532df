"""The results store: one folder with a SQLite database and content-addressed PNG artifacts.

```
<root>/priorlab.db                   SQLite, WAL mode (readers never block the writer)
<root>/artifacts/ab/abcdef….png      artifact files named by the SHA-256 of their bytes
```

Writes come from one writer process at a time (a sweep's writer actor, or the local CLI); each
write method is one transaction and idempotent, keyed by (run, step, name), so a retried
trial or a resumed sweep never duplicates rows. Group several writes into one transaction
with `with store.batch(): ...` (nested calls join it; an inner failure rolls back only its
own part). Reads may come from any process or thread at any time: every read opens its own
short-lived connection and runs one SELECT, so it sees one committed snapshot.

Run lifecycle: `register_runs` (pending) → `start_run` (running; clears an earlier attempt's
metric and artifact rows; refuses a `done` run unless forced, in the same UPDATE, so a second
sweep on the store never resets what the first one finished) → `log_metrics` /
`log_artifact` → `finish_run` (done, error, interrupted or diverged; `done` is written last,
together with the summary, in one transaction). `register_runs` never changes the status of a run that exists already — a done
run stays done, and a running/error/interrupted/diverged run is left for the sweep to decide
(rerun it with `start_run`, or skip it) — it only adds the sweep link.

Readers open with `readonly=True` (SQLite `mode=ro`: no WAL switch, no migration, no file
created). Damage is a one-line `StoreError` naming the file: a bad header, a truncated or empty
file at open, "malformed" pages at the query that meets them. Artifact files are trusted by
their hash, never by their size. `analysis/check.py` (`priorlab check`) audits a whole store.

Schema: see `analysis/schema.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from priorlab.analysis.schema import SCHEMA_VERSION, STATUSES, SchemaVersionError, StoreError, migrate, user_version
from priorlab.vocab import DB_NAME, DONE, PARAM_PREFIX, RUN_COLUMNS, RUNNING, SUMMARY_PREFIX

__all__ = ["Store", "StoreError", "ArtifactCorrupt", "STATUSES", "SchemaVersionError", "png_size"]

BUSY_TIMEOUT_S = 30.0
_TIME_COLUMNS = ("created_at", "started_at", "finished_at")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class ArtifactCorrupt(StoreError):
    """An artifact file whose bytes no longer hash to the name it is stored under."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when `data` is not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError(f"not PNG bytes (starts with {bytes(data[:16])!r})")
    return struct.unpack(">II", data[16:24])


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


class Store:
    """The results store at `root`: created if missing (unless `create=False`, then
    FileNotFoundError), migrated if older, `SchemaVersionError` if newer than this code.

    `readonly=True` is for readers (`priorlab runs`, the dashboard, notebooks): the database is
    opened with SQLite's `mode=ro`, nothing is created, migrated or switched to WAL, so it works
    on a read-only mount or a store owned by someone else (a folder it cannot write is opened
    `immutable`, which is safe there because nobody can write it either). A store that needs a
    migration, an empty (0-byte) or damaged file is a `StoreError` naming the file.
    (`any_version=True` lets a read-only opener inspect an older file as it is: `priorlab check`.)

    `fsync=False` skips flushing artifact files to disk before their rename (bulk loads).
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = True, fsync: bool = True,
                 readonly: bool = False, any_version: bool = False):
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        self.artifact_dir = self.root / "artifacts"
        self.fsync = fsync
        self.readonly = readonly
        self._immutable = False  # set when a read-only folder forces SQLite's immutable mode
        if readonly and not self.db_path.is_file():
            raise StoreError(f"no priorlab store at {self.root} (expected {self.db_path})")
        if not create and not self.db_path.exists():
            raise FileNotFoundError(f"no priorlab store at {self.root} (expected {self.db_path})")
        if not readonly:
            self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid: int | None = None
        self._depth = 0
        self._check_file()
        try:
            if readonly:
                self._open_readonly(any_version=any_version)
            else:
                conn = self._connect()
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    migrate(conn, where=str(self.db_path))
                finally:
                    conn.close()
        except sqlite3.DatabaseError as e:
            raise self._db_error(e) from None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}{', readonly=True' if self.readonly else ''})"

    def __reduce__(self):  # picklable (e.g. handed to a Ray actor): reopens by path
        return (_reopen, (type(self), str(self.root), self.fsync, self.readonly))

    # ------------------------------------------------------------------ opening and errors

    def _check_file(self) -> None:
        """Refuse a database file that cannot be a healthy store before SQLite touches it.

        SQLite itself accepts a 0-byte file as an empty database (a writer then gives it a
        fresh schema: fine for a new store, but a reader must never do that), and only notices
        a truncated file when a query reaches the missing pages.
        """
        try:
            size = self.db_path.stat().st_size
            with open(self.db_path, "rb") as f:
                header = f.read(100)
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreError(f"{self.db_path}: cannot read the database file ({e.strerror or e})") from None
        if size == 0:
            if self.readonly:
                raise StoreError(f"{self.db_path}: the database file is empty (0 bytes), not a priorlab "
                                 "store; if it held results they are lost (restore a backup)")
            return
        if len(header) < 100 or header[:16] != _SQLITE_MAGIC:
            raise StoreError(f"{self.db_path}: not a SQLite database (bad header, {size} bytes); "
                             "the file is damaged or is not a priorlab store")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        n_pages = int.from_bytes(header[28:32], "big")
        size_valid = header[24:28] == header[92:96]  # SQLite's own test for the in-header size
        wal = self.db_path.with_name(DB_NAME + "-wal")
        # With a non-empty WAL a checkpoint may be rewriting the file right now (header first),
        # so the size test only applies to a quiet database.
        quiet = not wal.exists() or wal.stat().st_size == 0
        if size_valid and quiet and n_pages and size < n_pages * page_size:
            raise StoreError(f"{self.db_path}: the database file is truncated ({size} bytes of "
                             f"{n_pages * page_size}); restore it from a backup")

    def _db_error(self, e: sqlite3.DatabaseError) -> StoreError:
        """SQLite's complaint about the file as one line naming it."""
        if isinstance(e, StoreError):
            return e
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "not a database" in text or "malformed" in text or "disk I/O" in text:
            hint = "the file is damaged; restore it from a backup (`priorlab check` shows what is affected)"
        elif "readonly" in text or "read-only" in text or "unable to open" in text:
            hint = "the folder or file is not writable here"
        else:
            hint = ""
        return StoreError(f"{self.db_path}: {text}" + (f" ({hint})" if hint else ""))

    def _open_readonly(self, any_version: bool = False) -> None:
        """Check a reader can read this file as it is: the right schema version, no writes.
        (`any_version`: `priorlab check` opens an older file as it is, to inspect it.)"""
        with self._reader() as c:
            version = user_version(c)
            n_tables = c.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.db_path} has schema version {version}, but this priorlab only knows versions up to "
                f"{SCHEMA_VERSION}; it was written by a newer priorlab — upgrade priorlab to read it")
        if version == 0:
            what = "an empty SQLite database" if n_tables == 0 else "a SQLite database of something else"
            raise StoreError(f"{self.db_path}: {what}, not a priorlab store (a reader never creates one)")
        if version < SCHEMA_VERSION and not any_version:
            raise StoreError(
                f"{self.db_path}: written by an older priorlab (schema v{version}, this one reads "
                f"v{SCHEMA_VERSION}); migrate it once with `priorlab check --store {self.root} --repair` "
                "(any `priorlab sweep` on it does too)")

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return self._connect_readonly()
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        # `mode=ro` never writes the database file. In WAL mode it still needs the shared-memory
        # index beside it (`-shm`); in a folder it cannot write, where that file cannot be made,
        # fall back to `immutable=1` (no locking, no WAL): safe there, since nobody can write
        # either. A non-empty WAL in such a folder holds commits `immutable` would not see.
        uri = "file:" + urllib.parse.quote(str(self.db_path.resolve())) + "?mode=ro"
        for attempt in (0, 1):
            conn = sqlite3.connect(uri + ("&immutable=1" if self._immutable else ""), uri=True,
                                   timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError as e:
                conn.close()
                wal = self.db_path.with_name(DB_NAME + "-wal")
                wal_empty = not wal.exists() or wal.stat().st_size == 0
                if attempt or self._immutable or os.access(self.root, os.W_OK) or not wal_empty:
                    raise self._db_error(e) from None
                self._immutable = True
        raise AssertionError("not reached")

    def _writer(self) -> sqlite3.Connection:
        # One write connection per process (re-created after a fork), shared by threads
        # under self._lock.
        if self.readonly:
            raise StoreError(f"{self.db_path}: this store was opened read-only; it cannot be written")
        if self._conn is None or self._conn_pid != os.getpid():
            conn = self._connect()
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: batched inserts touch many pages
            self._conn, self._conn_pid, self._depth = conn, os.getpid(), 0
        return self._conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection for one read; SQLite errors become one-line `StoreError`s."""
        try:
            conn = self._connect()
        except sqlite3.DatabaseError as e:
            raise self._db_error(e) from None
        try:
            conn.execute("PRAGMA query_only = ON")
            yield conn
        except sqlite3.DatabaseError as e:
            raise self._db_error(e) from None
        finally:
            conn.close()

    def close(self) -> None:
        """Close the write connection (reads need no closing). The store stays usable."""
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[sqlite3.Connection]:
        """One transaction around several writes (`with store.batch(): ...`).

        Nested `batch()` blocks (every write method uses one) become savepoints: an exception
        inside rolls back that block only, and the outermost block commits. Yields the write
        connection for bulk loaders that insert rows directly.
        """
        with self._lock:
            conn = self._writer()
            depth = self._depth
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth = depth + 1
            try:
                yield conn
            except BaseException:
                self._depth = depth
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO sp{depth}")
                    conn.execute(f"RELEASE sp{depth}")
                raise
            self._depth = depth
            conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")

    # ------------------------------------------------------------------ writes: sweeps

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
                     config = COALESCE(excluded.config, config), host = COALESCE(excluded.host, host),
                     status = excluded.status,
                     updated_at = excluded.updated_at, finished_at = excluded.finished_at""",
                (name, config_text, status, host, now, now, None if status == "running" else now))
            if config_text is not None:
                c.execute("INSERT OR IGNORE INTO sweep_configs(sweep, config, added_at) VALUES (?, ?, ?)",
                          (name, config_text, now))

    def sweep_configs(self, name: str) -> list[str]:
        """Every config text the sweep `name` has run with, oldest first."""
        with self._reader() as c:
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
                raise KeyError(f"no sweep named {name!r} in {self.root}")

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
            param_rows.extend((run_id, str(k), _param_value(v)) for k, v in params.items())
            link_rows.append((sweep, run_id, now))
        with self.batch() as c:
            c.execute("""INSERT INTO sweeps(name, status, created_at, updated_at)
                         VALUES (?, 'running', ?, ?) ON CONFLICT(name) DO NOTHING""", (sweep, now, now))
            before = c.total_changes
            c.executemany("""INSERT INTO runs(run_id, kind, params, status, created_at)
                             VALUES (?, ?, ?, 'pending', ?) ON CONFLICT(run_id) DO NOTHING""", run_rows)
            new = c.total_changes - before
            c.executemany("INSERT OR IGNORE INTO run_params(run_id, name, value) VALUES (?, ?, ?)",
                          param_rows)
            c.executemany("INSERT OR IGNORE INTO sweep_runs(sweep, run_id, added_at) VALUES (?, ?, ?)",
                          link_rows)
        return new

    def start_run(self, run_id: str, node: str | None = None, *, force: bool = False) -> bool:
        """Claim a registered run: mark it `running` and delete the metric/artifact rows of any
        earlier attempt (artifact files are shared by content and stay). Returns True.

        A `done` run is left untouched and False is returned, unless `force`: two sweeps on one
        store each decide what to run when they start, so the other one may have finished this
        run since. The test and the reset are one conditional UPDATE, so no interleaving of
        writers can reset a finished run.
        """
        with self.batch() as c:
            cur = c.execute(
                """UPDATE runs SET status = 'running', node = ?, started_at = ?, finished_at = NULL,
                                   error = NULL, summary = NULL, attempts = attempts + 1
                   WHERE run_id = ? AND (? OR status != 'done')""", (node, _now(), run_id, int(force)))
            if cur.rowcount == 0:
                if c.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                    return False  # done, and not forced
                raise KeyError(f"run {run_id!r} is not registered in {self.root}; "
                               "call register_runs first")
            c.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
        return True

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
            c.executemany("INSERT OR REPLACE INTO metrics(run_id, step, name, value) VALUES (?, ?, ?, ?)",
                          clean())

    def log_artifact(self, run_id: str, step: int, name: str, png: bytes) -> str:
        """Store a PNG (file first, atomically; once per content) and its row; return its sha256."""
        return self.log_artifacts_many(run_id, [(step, name, png)])[0]

    def log_artifacts_many(self, run_id: str, items: Iterable[tuple[int, str, bytes]]) -> list[str]:
        """Many `(step, name, png)` artifacts of one run; their rows in one transaction."""
        rows = []
        for step, name, png in items:
            sha, width, height = self.put_file(png)
            rows.append((run_id, int(step), name, sha, width, height))
        with self.batch() as c:
            c.executemany("""INSERT OR REPLACE INTO artifacts(run_id, step, name, sha256, width, height)
                             VALUES (?, ?, ?, ?, ?, ?)""", rows)
        return [r[3] for r in rows]

    def put_file(self, png: bytes) -> tuple[str, int, int]:
        """Write an artifact file if its content is not stored yet; return (sha256, width, height).

        Written to a temporary file in the same folder and renamed into place, so a reader or a
        crash never sees half a file. No database row: `log_artifact` adds that.
        """
        png = bytes(png)
        width, height = png_size(png)
        sha = hashlib.sha256(png).hexdigest()
        path = self.artifact_path(sha)
        # Skip the write only when the file there really is this content: a file of the right
        # size with damaged bytes (a bad disk, a partial copy) is replaced, not trusted.
        try:
            if path.stat().st_size == len(png) and file_sha256(path) == sha:
                return sha, width, height
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sha[:12]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(png)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return sha, width, height

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any] | None = None,
                   error: str | None = None) -> None:
        """Final status, summary and error of a run, in one transaction.

        Call it after the run's last metric and artifact are written (a writer that batches
        should put them in the same `batch()`), so `done` implies complete rows. A summary
        that says `{"status": "diverged"}` (the task contract for NaN losses) turns `done` into
        `diverged`; that key is then dropped from the stored summary (it is the run's status).
        `summary=None` leaves the stored summary as it is.
        """
        _check_status(status)
        if summary is not None:
            summary = dict(summary)
            if summary.get("status") in STATUSES:
                said = summary.pop("status")
                if status == "done":
                    status = said
        with self.batch() as c:
            cur = c.execute(
                """UPDATE runs SET status = ?, summary = COALESCE(?, summary), error = ?,
                                   finished_at = ?
                   WHERE run_id = ?""",
                (status, None if summary is None else _dumps(summary), error, _now(), run_id))
            if cur.rowcount == 0:
                raise KeyError(f"run {run_id!r} is not registered in {self.root}")

    def mark_unfinished(self, run_ids: Iterable[str], status: str = "interrupted",
                        error: str | None = None) -> int:
        """Set `status` (and `error`, when given) on those of `run_ids` that are `running`
        (after Ctrl-C, a crash, or a trial whose process died); pending and finished runs are
        left alone. Returns how many changed."""
        _check_status(status)
        if status in (DONE, RUNNING):
            raise ValueError(f"mark_unfinished cannot set {status!r}")
        ids = json.dumps([str(r) for r in _as_list(run_ids)])
        with self.batch() as c:
            cur = c.execute(
                """UPDATE runs SET status = ?, finished_at = ?, error = COALESCE(?, error)
                   WHERE status = 'running' AND run_id IN (SELECT value FROM json_each(?))""",
                (status, _now(), error, ids))
            return cur.rowcount

    # ------------------------------------------------------------------ reads

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: name, status, host, config, times, n_runs and n_<status> per status."""
        counts = ", ".join(f"COALESCE(SUM(r.status = '{s}'), 0) AS n_{s}" for s in STATUSES)
        sql = f"""
            SELECT s.name, s.status, s.host, s.created_at, s.updated_at, s.finished_at, s.config,
                   COUNT(r.run_id) AS n_runs, {counts}
            FROM sweeps s
            LEFT JOIN sweep_runs sr ON sr.sweep = s.name
            LEFT JOIN runs r ON r.run_id = sr.run_id
            GROUP BY s.name ORDER BY s.created_at, s.name"""
        with self._reader() as c:
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
                              (SELECT sweep FROM sweep_runs x WHERE x.run_id = r.run_id ORDER BY sweep))"""
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
            values = [_param_value(v) for v in ([None] if value is None else _as_list(value))]
            non_null = [v for v in values if v is not None]
            alts = []
            if non_null:
                alts.append(f"p.value IN ({', '.join('?' * len(non_null))})")
            if len(non_null) < len(values):
                alts.append("p.value IS NULL")
            conds.append(f"""r.run_id IN (SELECT p.run_id FROM run_params p
                                          WHERE p.name = ? AND ({' OR '.join(alts) or '0'}))""")
            args.extend([name, *non_null])
        sql = f"""SELECT r.run_id, {sweep_sql} AS sweep, r.kind, r.status, r.error, r.node, r.attempts,
                         r.created_at, r.started_at, r.finished_at, r.params, r.summary
                  FROM runs r {join}
                  {'WHERE ' + ' AND '.join(conds) if conds else ''}
                  ORDER BY r.rowid"""
        with self._reader() as c:
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
        with self._reader() as c:
            found = dict(c.execute(sql, args).fetchall())
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def metrics(self, run_ids: Iterable[str] | None = None,
                names: Iterable[str] | None = None) -> pd.DataFrame:
        """`DataFrame[run_id, step, name, value]`, ordered by run_id, name, step."""
        where, args = _run_name_filter(run_ids, names)
        sql = f"SELECT run_id, step, name, value FROM metrics{where} ORDER BY run_id, name, step"
        with self._reader() as c:
            rows = c.execute(sql, args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=["run_id", "step", "name", "value"])
        return df.astype({"step": "int64", "value": "float64"})

    def artifacts(self, run_ids: Iterable[str] | None = None,
                  names: Iterable[str] | None = None) -> pd.DataFrame:
        """`DataFrame[run_id, step, name, sha256, width, height]`, ordered by run_id, step, name."""
        where, args = _run_name_filter(run_ids, names)
        sql = f"SELECT run_id, step, name, sha256, width, height FROM artifacts{where} ORDER BY run_id, step, name"
        with self._reader() as c:
            rows = c.execute(sql, args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=["run_id", "step", "name", "sha256", "width", "height"])
        return df.astype({"step": "int64", "width": "int64", "height": "int64"})

    def artifact_path(self, sha256: str) -> Path:
        """Where the file of `sha256` lives (whether or not it exists)."""
        if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
            raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
        return self.artifact_dir / sha256[:2] / f"{sha256}.png"

    def artifact_bytes(self, sha256: str, *, verify: bool = False) -> bytes | None:
        """The PNG bytes of `sha256`, or None when the file is missing.

        `verify=True` hashes the bytes and raises `ArtifactCorrupt` (a `StoreError`) when they
        are not the content the name promises (a damaged file), so a viewer can say so instead
        of showing garbage or a broken image.
        """
        path = self.artifact_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if verify and hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactCorrupt(f"{path}: corrupted artifact (its bytes do not match its sha256; "
                                  f"`priorlab check --store {self.root}` lists every damaged file)")
        return data

    def artifact(self, run_id: str, name: str, step: int | None = None, *,
                 verify: bool = False) -> bytes | None:
        """PNG bytes of a run's artifact `name` at the latest step ≤ `step` (latest overall when
        `step` is None), or None. `verify`: as in `artifact_bytes`."""
        sql = "SELECT sha256 FROM artifacts WHERE run_id = ? AND name = ?"
        args: list = [run_id, name]
        if step is not None:
            sql += " AND step <= ?"
            args.append(int(step))
        with self._reader() as c:
            row = c.execute(sql + " ORDER BY step DESC LIMIT 1", args).fetchone()
        return None if row is None else self.artifact_bytes(row[0], verify=verify)

    def done_ids(self, run_ids: Iterable[str]) -> set[str]:
        """Those of `run_ids` whose status is `done`."""
        ids = json.dumps([str(r) for r in _as_list(run_ids)])
        with self._reader() as c:
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
        with self._reader() as c:
            return c.execute("PRAGMA user_version").fetchone()[0]


def _reopen(cls: type, root: str, fsync: bool, readonly: bool) -> Store:
    return cls(root, fsync=fsync, readonly=readonly)


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
