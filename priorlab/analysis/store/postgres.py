"""The store's records in PostgreSQL (`--store postgresql://user@host:port/db`), for a group
whose sweeps run from several machines into one store.

Through psycopg 3 directly, not SQLAlchemy Core: the store's SQL is a few dozen plain statements
written once for both databases (`records.py`, `frames.py`, the migrations in `schema.py`), and
what differs is small and mechanical (`?` vs `%s`, `json_each` vs `jsonb_array_elements_text`,
`group_concat` vs `string_agg`, SQLite's `rowid`), so `PgConn` rewrites it here. A query
builder would mean a second spelling of every statement and a larger import in the dashboard.

`PostgresDatabase` offers what `SqliteDatabase` does: `batch()` (one transaction per outermost
block, savepoints inside; one write connection per process, shared by threads under a lock),
`reader()` (one read-only statement per call on a per-thread connection in autocommit: one
committed snapshot per read), forward migrations under an advisory lock, one-line `StoreError`s
naming the server. Claims stay one conditional UPDATE: PostgreSQL locks the row and re-checks
the condition after a concurrent claim commits, so two drivers never both take a run.

Credentials come only from libpq's environment (`PGPASSWORD`, `PGUSER`, `~/.pgpass`,
`PGSSLMODE`, ...): a password in the URL is refused, so it never reaches a log, a shell history
or the dashboard.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from priorlab.analysis.schema import SCHEMA_VERSION, SchemaVersionError, StoreAway, StoreError
from priorlab.analysis.store.records import _json_clean

CONNECT_TIMEOUT_S = 10
READERS_KEPT = 4  # idle read connections a process keeps (the dashboard's concurrent reruns)
_LOCK_ID = 0x7072696F726C6162  # "priorlab": serialises migrations across drivers
DB_SCHEMES = ("postgresql://", "postgres://")


def is_db_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(DB_SCHEMES)


def safe_url(url: str) -> str:
    """`url` without a password, for messages (the constructor refuses one anyway)."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1@", url)


_TRANSLATIONS = [
    (re.compile(r"json_each\((\?|:\w+)\)"), r"jsonb_array_elements_text(\1::jsonb)"),
    (re.compile(r"\bgroup_concat\("), "string_agg("),
    (re.compile(r"ORDER BY r\.rowid"), "ORDER BY r.created_at, r.run_id"),  # registration order
]


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def postgres_sql(sql: str, with_args: bool = True, named: bool = False) -> str:
    """The store's SQLite statement as PostgreSQL says it (the few forms the store uses):
    `?` or `:name` parameters become psycopg's `%s` or `%(name)s`."""
    for pattern, repl in _TRANSLATIONS:
        sql = pattern.sub(repl, sql)
    if not with_args:
        return sql
    sql = sql.replace("%", "%%")
    return _NAMED.sub(r"%(\1)s", sql) if named else sql.replace("?", "%s")


class PgConn:
    """A psycopg connection with sqlite3's calling convention (`execute(sql, args)` → cursor)."""

    dialect = "postgresql"

    def __init__(self, raw, where: str):
        self.raw = raw
        self.where = where
        self._types: dict[str, dict[str, str]] = {}

    def execute(self, sql: str, args: Any = None):
        from psycopg import ClientCursor

        cur = self.raw.cursor()
        if isinstance(args, Mapping) and args:
            # Named parameters (`:owner IS NULL` in the claim rule): bound client-side, so a None
            # is a plain NULL whose type PostgreSQL never has to guess, as in SQLite.
            cur = ClientCursor(self.raw)
            cur.execute(postgres_sql(sql, named=True), args)
        elif args:
            cur.execute(postgres_sql(sql), args)
        else:  # no parameters: psycopg runs it as a script (several statements allowed)
            cur.execute(postgres_sql(sql, with_args=False))
        return cur

    def executemany(self, sql: str, rows):
        rows = list(rows)
        m = _BULK_INSERT.match(sql)
        if m and len(rows) >= BULK_ROWS and not isinstance(rows[0], Mapping):
            return self._array_insert(m, rows)
        cur = self.raw.cursor()
        cur.executemany(postgres_sql(sql, named=bool(rows) and isinstance(rows[0], Mapping)), rows)
        return cur

    def _array_insert(self, m: re.Match, rows: list) -> _Count:
        """Many rows of one INSERT as one statement: each column sent as one array and turned
        back into rows by `unnest`, with the statement's own ON CONFLICT clause. One round trip
        and one statement for the server to run, however many rows (the writer's metric
        batches); the outcome is that of a statement per row. Rows repeating a conflict key keep
        the last one, as the row-by-row statements would (PostgreSQL refuses to update one row
        twice in a statement)."""
        table, cols = m["table"], [c.strip() for c in m["cols"].split(",")]
        key = re.search(r"ON\s+CONFLICT\s*\(([^)]*)\)\s*DO\s+UPDATE", m["rest"], re.I)
        if key:
            at = [cols.index(k.strip()) for k in key[1].split(",")]
            rows = list({tuple(r[i] for i in at): r for r in rows}.values())
        types = self._column_types(table)
        arrays = ", ".join(f"%s::{types[c]}[]" for c in cols)
        cur = self.raw.cursor()
        cur.execute(f"INSERT INTO {table}({', '.join(cols)}) SELECT * FROM unnest({arrays}) "
                    + m["rest"].replace("%", "%%"), [list(column) for column in zip(*rows)])
        return _Count(cur.rowcount)

    def _column_types(self, table: str) -> dict[str, str]:
        """`{column: SQL type}` of one of the store's tables (asked once per connection)."""
        types = self._types.get(table)
        if types is None:
            types = self._types[table] = dict(self.raw.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
        return types


class _Count:
    """What a bulk insert reports: the rows it changed (as `executemany` does in sqlite3)."""

    def __init__(self, rowcount: int):
        self.rowcount = rowcount


# `INSERT INTO t(a, b) VALUES (?, ?) [ON CONFLICT …]`: the statements `_array_insert` can speed up.
_BULK_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(?P<table>\w+)\s*\((?P<cols>[^)]*)\)\s*VALUES\s*"
                         r"\(\s*\?(?:\s*,\s*\?)*\s*\)\s*(?P<rest>.*)$", re.S | re.I)
BULK_ROWS = 16  # from this many rows on, one array INSERT beats a statement per row


class PostgresDatabase:
    """The records of a store in the PostgreSQL database at `url`."""

    def __init__(self, url: str, *, readonly: bool = False, any_version: bool = False):
        import psycopg  # only a server store pays for the driver's import

        self._psycopg = psycopg
        if re.search(r"://[^/@]*:[^/@]*@", url):
            raise StoreError(f"{safe_url(url)}: the store URL holds a password; put it in PGPASSWORD "
                             "or ~/.pgpass instead (credentials never go on the command line)")
        self.url = url
        self.readonly = readonly
        self._lock = threading.RLock()
        self._conn = None
        self._conn_pid: int | None = None
        self._depth = 0
        self._flat = False  # the open transaction's nested blocks are not savepoints (batch())
        self._idle_lock = threading.Lock()  # not the writer's: a long batch never holds up a read
        self._idle: list[PgConn] = []  # read connections between two reads
        self._idle_pid = os.getpid()
        if readonly:
            self._check_version(any_version)
        else:
            self._migrate()

    @property
    def where(self) -> str:
        return safe_url(self.url)

    @staticmethod
    def param_value(value: Any) -> str | None:
        """A parameter as `run_params.value` (JSONB) holds it: JSON text, which PostgreSQL casts."""
        value = _json_clean(value)
        return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

    # ------------------------------------------------------------------ errors and connections

    def _error(self, e: Exception) -> StoreError:
        if isinstance(e, StoreError):
            return e
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, self._psycopg.OperationalError):
            return StoreAway(f"PostgreSQL store {self.where}: cannot reach the database ({text}); "
                              "the same command resumes once it is back")
        return StoreError(f"PostgreSQL store {self.where}: {text}")

    def _connect(self, readonly: bool):
        try:
            raw = self._psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                        application_name="priorlab")
            if readonly:
                raw.execute("SET default_transaction_read_only = on")
            return raw
        except self._psycopg.Error as e:
            raise self._error(e) from None

    def _writer(self) -> PgConn:
        if self.readonly:
            raise StoreError(f"{self.where}: this store was opened read-only; it cannot be written")
        if self._conn is None or self._conn_pid != os.getpid() or self._conn.raw.closed:
            self._conn = PgConn(self._connect(readonly=False), self.where)
            self._conn_pid, self._depth = os.getpid(), 0
        return self._conn

    @contextmanager
    def reader(self) -> Iterator[PgConn]:
        """A read-only connection for one read, from a small pool this process keeps (Streamlit
        runs every rerun in a new thread: a connection per thread would connect on every
        interaction); errors become `StoreError`s."""
        with self._idle_lock:
            if self._idle_pid != os.getpid():  # after a fork, the parent's sockets are not ours
                self._idle, self._idle_pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.raw.closed:
            conn = PgConn(self._connect(readonly=True), self.where)
        try:
            yield conn
        except self._psycopg.Error as e:
            if not conn.raw.closed and not isinstance(e, self._psycopg.OperationalError):
                self._put_back(conn)
            else:
                conn.raw.close()  # reconnect on the next read (the server came back)
            raise self._error(e) from None
        except BaseException:
            conn.raw.close()
            raise
        self._put_back(conn)

    def _put_back(self, conn: PgConn) -> None:
        with self._idle_lock:
            if len(self._idle) < READERS_KEPT and self._idle_pid == os.getpid():
                self._idle.append(conn)
                return
        conn.raw.close()

    @contextmanager
    def batch(self, savepoints: bool = True) -> Iterator[PgConn]:
        """One transaction around several writes; nested blocks are savepoints (as in SQLite),
        unless the outermost block says `savepoints=False`: its nested blocks then join it
        without the two round trips a savepoint costs, and an exception in any of them must
        end the whole block (the group commit's case: it retries item by item)."""
        with self._lock:
            conn = self._writer()
            depth = self._depth
            if depth and self._flat:  # joins the open transaction: no statement of its own
                yield conn
                return
            try:
                conn.execute("BEGIN" if depth == 0 else f"SAVEPOINT sp{depth}")
            except self._psycopg.Error as e:
                self._conn = None
                raise self._error(e) from None
            self._depth = depth + 1
            if depth == 0:  # each transaction says for itself; nested blocks read it
                self._flat = not savepoints
            try:
                yield conn
            except BaseException as e:
                self._depth = depth
                try:
                    conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO SAVEPOINT sp{depth}")
                except self._psycopg.Error:
                    self._conn = None  # the connection is gone: the server rolled back
                if isinstance(e, self._psycopg.Error):
                    raise self._error(e) from None
                raise
            self._depth = depth
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT sp{depth}")
            except self._psycopg.Error as e:
                self._conn = None
                raise self._error(e) from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.raw.close()
            self._conn = None
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.raw.close()

    # ------------------------------------------------------------------ schema

    def _version(self, conn: PgConn) -> int:
        if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    def schema_version(self) -> int:
        with self.reader() as c:
            return self._version(c)

    def _check_version(self, any_version: bool) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.where} has schema version {version}, but this priorlab only knows versions up to "
                f"{SCHEMA_VERSION}; it was written by a newer priorlab — upgrade priorlab to read it")
        if version == 0:
            raise StoreError(f"{self.where}: no priorlab store in this database (a reader never creates one)")
        if version < SCHEMA_VERSION and not any_version:
            raise StoreError(f"{self.where}: written by an older priorlab (schema v{version}, this one reads "
                             f"v{SCHEMA_VERSION}); migrate it once with `priorlab check --store URL --repair`")

    def _migrate(self) -> int:
        """Bring the database to the newest version in one transaction; return the version it was at."""
        import priorlab.analysis.schema as schema  # read at call time: tests append migrations

        migrations = schema.MIGRATIONS
        with self.batch() as c:
            c.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            found = self._version(c)
            if found > len(migrations):
                raise SchemaVersionError(
                    f"{self.where} has schema version {found}, but this priorlab only knows versions up to "
                    f"{len(migrations)}; it was written by a newer priorlab — upgrade priorlab to read it")
            for version in range(found, len(migrations)):
                migrations[version](c)
                c.execute("INSERT INTO schema_version(version, applied_at) VALUES (?, ?)",
                          (version + 1, time.time()))
        return found

    def change_token(self) -> str:
        """Moves whenever anything commits on the server (its write-ahead-log insert position): a
        dashboard's cheap "has the store changed?" without scanning a table. Not the WAL *write*
        position (`pg_current_wal_lsn`): a server with `synchronous_commit = off` moves that
        only when its WAL writer next flushes, up to a few hundred ms after the commit."""
        with self.reader() as c:
            return str(c.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])

    def integrity_problems(self) -> list[str]:
        """What the database itself reports wrong (PostgreSQL enforces keys: nothing to scan)."""
        return []
