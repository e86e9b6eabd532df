"""The results store's SQLite schema and its forward migrations.

`PRAGMA user_version` is the schema version of a database file; the `schema_version` table
records when each version was applied. `MIGRATIONS[i]` takes a database from version `i` to
`i + 1` (version 0 is an empty file), so `SCHEMA_VERSION == len(MIGRATIONS)`.

The same migrations build a PostgreSQL store (`store/postgres.py`): each is written once in
SQLite's DDL, and `_script` renders it for PostgreSQL on a PostgreSQL connection (`REAL` →
`DOUBLE PRECISION`, no `WITHOUT ROWID`, the untyped parameter value → `JSONB`); the few steps
SQLite cannot say in DDL (changing a CHECK constraint) branch on `is_postgres(conn)`. There the
version is the highest row of `schema_version`.

Rules for adding a migration (never edit a released one):
- append a function `_vN(conn)` to `MIGRATIONS`; it runs inside the single transaction that
  `migrate` opens, so a failure leaves the file at its old version;
- foreign keys are OFF while migrating (table rebuilds are allowed); `migrate` runs
  `PRAGMA foreign_key_check` before committing;
- readers of an older priorlab refuse a newer file (`SchemaVersionError`), so a migration may
  change anything, but keep the column names the read API exposes.
"""

from __future__ import annotations

import errno
import re
import sqlite3
import time
from collections.abc import Callable

from priorlab.vocab import STATUSES, STATUSES_V1  # v2 added "pruned" (see priorlab.vocab)


class StoreError(RuntimeError):
    """A store that cannot be read or written as asked (corrupt, read-only, needs a migration);
    the message is one line that names the file and, where there is one, the fix.
    (Re-exported as `priorlab.analysis.store.StoreError`.)"""


class StoreAway(StoreError):
    """The store's database or object store cannot be reached (down, refused, timed out): no
    write can succeed until it is back, and the same command then resumes."""


_FULL = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def disk_full(e: BaseException) -> str | None:
    """What says the disk is full, anywhere in `e`'s chain (Tune wraps its own writes' OSError
    in a TuneError, Ray a writer actor's in a RayTaskError), else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e.strerror or _FULL[0]
        said = next((f for f in _FULL if f in str(e)), None)
        if said:
            return said
        e = e.__cause__ or e.__context__
    return None


class SchemaVersionError(StoreError):
    """The database was written by a newer priorlab than this one."""


def _status_check(statuses: tuple[str, ...]) -> str:
    return "CHECK (status IN (" + ", ".join(f"'{s}'" for s in statuses) + "))"


def _v1(conn: sqlite3.Connection) -> None:
    status_check = _status_check(STATUSES_V1)
    _script(conn, f"""
        CREATE TABLE schema_version (
            version     INTEGER PRIMARY KEY,
            applied_at  REAL NOT NULL
        );
        CREATE TABLE sweeps (
            name        TEXT PRIMARY KEY,
            config      TEXT,
            status      TEXT NOT NULL DEFAULT 'running',
            host        TEXT,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            finished_at REAL
        );
        CREATE TABLE runs (
            run_id      TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            params      TEXT NOT NULL DEFAULT '{{}}',  -- JSON object, as registered
            status      TEXT NOT NULL DEFAULT 'pending' {status_check},
            error       TEXT,
            node        TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,    -- how many times start_run was called
            created_at  REAL NOT NULL,                 -- unix seconds (UTC)
            started_at  REAL,
            finished_at REAL,
            summary     TEXT                           -- JSON object or NULL
        );
        CREATE INDEX runs_status ON runs(status);
        CREATE INDEX runs_kind ON runs(kind);

        -- One row per (run, parameter): every grid axis is indexed and filterable in SQL
        -- without changing the schema when a task grows a parameter.
        CREATE TABLE run_params (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            name   TEXT NOT NULL,
            value,                                     -- int, real, text or NULL
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID;
        CREATE INDEX run_params_name_value ON run_params(name, value);

        CREATE TABLE sweep_runs (
            sweep    TEXT NOT NULL REFERENCES sweeps(name) ON DELETE CASCADE,
            run_id   TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            added_at REAL NOT NULL,
            PRIMARY KEY (sweep, run_id)
        ) WITHOUT ROWID;
        CREATE INDEX sweep_runs_run ON sweep_runs(run_id, sweep);

        -- Keyed by (run_id, step, name); stored in (run_id, name, step) order so one run's
        -- curves are contiguous on disk.
        CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            step   INTEGER NOT NULL,
            name   TEXT NOT NULL,
            value  REAL,                               -- NaN is stored as NULL
            PRIMARY KEY (run_id, name, step)
        ) WITHOUT ROWID;

        CREATE TABLE artifacts (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            step   INTEGER NOT NULL,
            name   TEXT NOT NULL,
            sha256 TEXT NOT NULL,                      -- file artifacts/<sha[:2]>/<sha>.png
            width  INTEGER NOT NULL,
            height INTEGER NOT NULL,
            PRIMARY KEY (run_id, step, name)
        ) WITHOUT ROWID;
        CREATE INDEX artifacts_sha ON artifacts(sha256);
        """)


def is_postgres(conn) -> bool:
    """Whether `conn` is a PostgreSQL connection (`store/postgres.py`), not SQLite's."""
    return getattr(conn, "dialect", "sqlite") == "postgresql"


def postgres_ddl(sql: str) -> str:
    """SQLite DDL as PostgreSQL says it (only the forms the migrations here use)."""
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    sql = sql.replace(") WITHOUT ROWID;", ");")
    sql = re.sub(r"(\n\s*value),(\s*--)", r"\1 JSONB,\2", sql)  # run_params.value: int, real, text or NULL
    return sql


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction (`executescript` would COMMIT)."""
    if is_postgres(conn):
        conn.execute(postgres_ddl(sql))  # psycopg runs a parameterless script as one batch
        return
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


def _v2(conn: sqlite3.Connection) -> None:
    """Status `pruned`; `sweep_configs`, every config text a sweep name has run with."""
    if is_postgres(conn):
        conn.execute("ALTER TABLE runs DROP CONSTRAINT runs_status_check")
        conn.execute(f"ALTER TABLE runs ADD CONSTRAINT runs_status_check {_status_check(STATUSES)}")
    else:
        _rebuild_runs_v2(conn)
    _script(conn, """
        -- One row per distinct config text a sweep name has been run with (oldest first).
        CREATE TABLE sweep_configs (
            sweep    TEXT NOT NULL REFERENCES sweeps(name) ON DELETE CASCADE,
            config   TEXT NOT NULL,
            added_at REAL NOT NULL,
            PRIMARY KEY (sweep, config)
        ) WITHOUT ROWID;
        INSERT INTO sweep_configs(sweep, config, added_at)
            SELECT name, config, created_at FROM sweeps WHERE config IS NOT NULL;
        """)


def _rebuild_runs_v2(conn: sqlite3.Connection) -> None:
    # SQLite cannot change a CHECK constraint in place: rebuild `runs` (foreign keys are off
    # while migrating; the children keep referring to the table by name).
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    old, new = _status_check(STATUSES_V1), _status_check(STATUSES)
    if old not in sql:
        raise sqlite3.DatabaseError("runs table has an unexpected status constraint; cannot migrate")
    conn.execute(sql.replace("CREATE TABLE runs", "CREATE TABLE runs_v2", 1).replace(old, new))
    conn.execute("INSERT INTO runs_v2 SELECT * FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_v2 RENAME TO runs")
    _script(conn, """
        CREATE INDEX runs_status ON runs(status);
        CREATE INDEX runs_kind ON runs(kind);
        """)


def _v3(conn: sqlite3.Connection) -> None:
    """Claims with an owner and a lease (`analysis/claims.py`), and the row counts a run's
    trial sent, so `done` can be checked against what was really stored."""
    _script(conn, """
        ALTER TABLE runs ADD COLUMN owner TEXT;            -- who runs it: "host:pid[:token]"
        ALTER TABLE runs ADD COLUMN lease_until REAL;      -- the owner's claim holds until then
        ALTER TABLE runs ADD COLUMN sent_metrics INTEGER;  -- metric rows its trial sent (NULL: unknown)
        ALTER TABLE runs ADD COLUMN sent_artifacts INTEGER;
        """)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, where: str = "database",
            migrations: list[Callable[[sqlite3.Connection], None]] | None = None) -> int:
    """Bring `conn`'s database to the newest version; return the version it was at.

    `conn` must be in autocommit mode (`isolation_level=None`) with foreign keys off.
    Concurrent openers are safe: the version is re-read under the write lock.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    latest = len(migrations)
    found = user_version(conn)
    _check_not_newer(found, latest, where)
    if found == latest:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = user_version(conn)
        _check_not_newer(found, latest, where)
        for version in range(found, latest):
            migrations[version](conn)
            conn.execute("INSERT OR REPLACE INTO schema_version(version, applied_at) VALUES (?, ?)",
                         (version + 1, time.time()))
        bad = conn.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            raise sqlite3.IntegrityError(f"migrating {where} left dangling references: {bad[:5]}")
        conn.execute(f"PRAGMA user_version = {latest:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _check_not_newer(found: int, latest: int, where: str) -> None:
    if found > latest:
        raise SchemaVersionError(
            f"{where} has schema version {found}, but this priorlab only knows versions up to "
            f"{latest}; it was written by a newer priorlab — upgrade priorlab to read it"
        )
