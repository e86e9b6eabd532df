"""The store's records in SQLite: one file, `<root>/priorlab.db`, in WAL mode (readers never
block the writer).

`SqliteDatabase` owns the connections: one write connection per process (shared by threads
under a lock; `batch()` is one transaction, nested blocks are savepoints) and a short-lived
connection per read (`reader()`: one committed snapshot). It turns SQLite's complaints into
one-line `StoreError`s naming the file, refuses damaged files before SQLite touches them, and
opens readers with `mode=ro` (no WAL switch, no migration, no file created). The SQL of the
store's reads and writes lives in `records.py` and `frames.py`; the schema in `schema.py`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from priorlab.analysis.schema import SCHEMA_VERSION, SchemaVersionError, StoreError, migrate, user_version
from priorlab.analysis.store.records import _param_value
from priorlab.vocab import DB_NAME
BUSY_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


# Descriptors of database files this process has read a header from, kept open for good:
# closing any descriptor of a file drops every POSIX lock this process holds on it, including
# the locks of its open SQLite connections (SQLite only guards against that for its own
# descriptors), after which another process may checkpoint and delete the WAL under them.
_HEADER_FDS: dict[tuple[int, int], int] = {}
_HEADER_LOCK = threading.Lock()


def _read_header(path: Path) -> bytes:
    """The first 100 bytes of a database file, read without ever closing a descriptor of it."""
    with _HEADER_LOCK:
        st = os.stat(path)
        fd = _HEADER_FDS.get((st.st_dev, st.st_ino))
        if fd is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            st = os.fstat(fd)
            _HEADER_FDS.setdefault((st.st_dev, st.st_ino), fd)
        return os.pread(fd, 100, 0)


class SqliteDatabase:
    """The database file of the store folder `root` (see `Store` for `readonly`, `any_version`)."""

    def __init__(self, root: str | os.PathLike, *, readonly: bool = False, any_version: bool = False):
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        self.readonly = readonly
        self._immutable = False  # set when a read-only folder forces SQLite's immutable mode
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid: int | None = None
        self._depth = 0
        self._flat = False  # the open transaction's nested blocks are not savepoints (batch())
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

    param_value = staticmethod(_param_value)  # a parameter as `run_params.value` holds it

    @property
    def where(self) -> str:
        """The database as a user names it in messages."""
        return str(self.db_path)

    def _check_file(self) -> None:
        """Refuse a database file that cannot be a healthy store before SQLite touches it.

        SQLite itself accepts a 0-byte file as an empty database (a writer then gives it a
        fresh schema: fine for a new store, but a reader must never do that), and only notices
        a truncated file when a query reaches the missing pages.
        """
        try:
            size = self.db_path.stat().st_size
            header = _read_header(self.db_path)
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
        with self.reader() as c:
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
    def reader(self) -> Iterator[sqlite3.Connection]:
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

    @contextmanager
    def batch(self, savepoints: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction around several writes (`with db.batch(): ...`).

        Nested `batch()` blocks (every write method uses one) become savepoints: an exception
        inside rolls back that block only, and the outermost block commits. With
        `savepoints=False` on the outermost block its nested blocks simply join it (an exception
        in one must end the whole block). Yields the write connection for bulk loaders that
        insert rows directly.
        """
        with self._lock:
            conn = self._writer()
            depth = self._depth
            if depth and self._flat:  # joins the open transaction: no statement of its own
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth = depth + 1
            if depth == 0:  # each transaction says for itself; nested blocks read it
                self._flat = not savepoints
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
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
            except sqlite3.DatabaseError:
                # A COMMIT that fails (a full disk) leaves the transaction open and the write
                # lock held: every later writer, a rerun's too, would wait on it forever.
                if depth == 0 and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        with self.reader() as c:
            return user_version(c)

    def integrity_problems(self) -> list[str]:
        """SQLite's own audit of the file: damaged pages, rows referring to missing rows."""
        with self.reader() as c:
            problems = [r[0] for r in c.execute("PRAGMA integrity_check").fetchall()]
            out = [f"integrity check: {p}" for p in problems[:10]] if problems != ["ok"] else []
            dangling = c.execute("PRAGMA foreign_key_check").fetchall()
        if dangling:
            out.append(f"{len(dangling)} rows refer to missing rows "
                       f"(first: table {dangling[0][0]}, row {dangling[0][1]})")
        return out
