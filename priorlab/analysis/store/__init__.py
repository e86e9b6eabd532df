"""The results store: one folder with a SQLite database and content-addressed PNG artifacts.

`Store` is the facade; its parts, one concern each:
- `sqlite.py`: the database file and its connections (transactions, read-only opening, errors);
- `records.py`: the writes (sweeps, run claims and lifecycle, metric and artifact rows);
- `frames.py`: the reads as pandas DataFrames;
- `postgres.py`: the same records in PostgreSQL (`postgresql://…`), for a group's shared store;
- `files.py`: the files (content-addressed artifacts and shard outputs, their one layout);
- `objects.py`: the same files under any fsspec URL (`s3://bucket/prefix`, `gs://…`).

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
metric and artifact rows; refuses a `done` run unless forced and a run another live sweep has
claimed, in the same UPDATE (`analysis/claims.py`), so a second sweep on the store never resets
what the first one finished or is running) → `log_metrics` /
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

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from priorlab.analysis.schema import STATUSES, SchemaVersionError, StoreAway, StoreError
from priorlab.analysis.store.files import ArtifactCorrupt, LocalFiles, file_sha256, png_size
from priorlab.analysis.store.frames import RUN_COLUMNS, Reads
from priorlab.analysis.store.objects import FsspecFiles, is_files_url
from priorlab.analysis.store.postgres import PostgresDatabase, is_db_url, safe_url
from priorlab.analysis.store.records import Writes, _dumps
from priorlab.analysis.store.sqlite import BUSY_TIMEOUT_S, DB_NAME, SqliteDatabase

__all__ = ["Store", "StoreError", "StoreAway", "ArtifactCorrupt", "STATUSES", "SchemaVersionError", "png_size",
           "DB_NAME", "RUN_COLUMNS", "BUSY_TIMEOUT_S", "file_sha256", "_dumps", "is_db_url",
           "open_files", "open_store", "require_artifacts", "resolve_store", "store_exists"]


class Store(Writes, Reads):
    """The results store at `root`: created if missing (unless `create=False`, then
    FileNotFoundError), migrated if older, `SchemaVersionError` if newer than this code.

    `root` is a folder (SQLite, files inside it) or `postgresql://user@host:port/db`; a server
    store needs `artifacts`, where its files live (an fsspec URL such as `s3://bucket/prefix`,
    or a folder); a folder store keeps them inside itself unless `artifacts` says otherwise.
    (`resolve_store` reads the defaults from `PRIORLAB_STORE` / `PRIORLAB_ARTIFACTS`.)

    `readonly=True` is for readers (`priorlab runs`, the dashboard, notebooks): the database is
    opened with SQLite's `mode=ro`, nothing is created, migrated or switched to WAL, so it works
    on a read-only mount or a store owned by someone else (a folder it cannot write is opened
    `immutable`, which is safe there because nobody can write it either). A store that needs a
    migration, an empty (0-byte) or damaged file is a `StoreError` naming the file.
    (`any_version=True` lets a read-only opener inspect an older file as it is: `priorlab check`.)

    `fsync=False` skips flushing artifact files to disk before their rename (bulk loads).
    """

    def __init__(self, root: str | os.PathLike, *, artifacts: str | os.PathLike | None = None,
                 create: bool = True, fsync: bool = True, readonly: bool = False, any_version: bool = False):
        self.fsync = fsync
        self.readonly = readonly
        self.artifacts_url = None if artifacts is None else str(artifacts)
        if is_db_url(str(root)):
            self.root, self.db_path = str(root), None
            require_artifacts(self.root, artifacts)
            self.files = open_files(artifacts, fsync=fsync)
            self.db = PostgresDatabase(self.root, readonly=readonly, any_version=any_version)
            return
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        if readonly and not self.db_path.is_file():
            raise StoreError(f"no priorlab store at {self.root} (expected {self.db_path})")
        if not create and not self.db_path.exists():
            raise FileNotFoundError(f"no priorlab store at {self.root} (expected {self.db_path})")
        if not readonly:
            self.root.mkdir(parents=True, exist_ok=True)
        self.files = open_files(self.root if artifacts is None else artifacts, fsync=fsync)
        self.db = SqliteDatabase(self.root, readonly=readonly, any_version=any_version)

    @property
    def where(self) -> str:
        """The store as a user names it (`--store`), without credentials."""
        return safe_url(self.root) if self.db_path is None else str(self.root)

    def __repr__(self) -> str:
        extra = "" if self.artifacts_url is None else f", artifacts={self.artifacts_url!r}"
        return f"Store({self.where!r}{extra}{', readonly=True' if self.readonly else ''})"

    def __reduce__(self):  # picklable (e.g. handed to a Ray actor): reopens by name
        return (_reopen, (type(self), str(self.root), self.fsync, self.readonly, self.artifacts_url))

    @property
    def artifact_dir(self) -> Path:
        return self.files.artifact_dir

    @contextmanager
    def batch(self, savepoints: bool = True) -> Iterator:
        """One transaction around several writes (`with store.batch(): ...`).

        Nested `batch()` blocks (every write method uses one) become savepoints: an exception
        inside rolls back that block only, and the outermost block commits. `savepoints=False`
        on the outermost block: nested blocks join it without savepoints (on PostgreSQL each
        costs two round trips), so an exception in one must end the whole block. Yields the
        write connection for bulk loaders that insert rows directly.
        """
        with self.db.batch(savepoints) as c:
            yield c

    @contextmanager
    def _reader(self) -> Iterator:
        """A short-lived connection for one read (tests and `priorlab check` run raw SQL)."""
        with self.db.reader() as c:
            yield c

    def close(self) -> None:
        """Close the write connection (reads need no closing). The store stays usable."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reopen(cls: type, root: str, fsync: bool, readonly: bool, artifacts: str | None = None) -> Store:
    return cls(root, fsync=fsync, readonly=readonly, artifacts=artifacts)


def open_files(where: str | os.PathLike, *, fsync: bool = True) -> LocalFiles | FsspecFiles:
    """The files of a store: a folder (or `file://` URL) on this machine, else any fsspec URL."""
    where = str(where)
    if is_files_url(where):
        return FsspecFiles(where)
    return LocalFiles(where.removeprefix("file://"), fsync=fsync)


def require_artifacts(root: str | os.PathLike, artifacts: str | os.PathLike | None) -> None:
    """A PostgreSQL store must be told where its files live: one line when it is not."""
    if artifacts is None and is_db_url(str(root)):
        raise StoreError(f"{safe_url(str(root))}: a PostgreSQL store keeps its images elsewhere; name where "
                         "with --artifacts URL (or PRIORLAB_ARTIFACTS), e.g. s3://bucket/prefix")


def open_store(store: str | os.PathLike | None = None, artifacts: str | os.PathLike | None = None,
               *, readonly: bool = True) -> Store:
    """A notebook's way in: the store named, else `PRIORLAB_STORE` / `PRIORLAB_ARTIFACTS`, else
    `results`; read-only unless asked (`open_store()` sees what the dashboard sees)."""
    store, artifacts = resolve_store(store, artifacts, default="results")
    return Store(store, artifacts=artifacts, readonly=readonly)


def store_exists(root: str | os.PathLike) -> bool:
    """Whether a store is there to read: a folder once its database exists; a server store is
    assumed there (opening it says otherwise, in one line)."""
    return is_db_url(str(root)) or (Path(root) / DB_NAME).is_file()


def resolve_store(store: str | os.PathLike | None = None, artifacts: str | os.PathLike | None = None,
                  default: str | None = None) -> tuple[str, str | None]:
    """(store, artifacts) as named, else from `PRIORLAB_STORE` / `PRIORLAB_ARTIFACTS`, else `default`
    (the one rule every command and notebook uses)."""
    store = store if store not in (None, "") else os.environ.get("PRIORLAB_STORE") or default
    artifacts = artifacts if artifacts not in (None, "") else os.environ.get("PRIORLAB_ARTIFACTS") or None
    if store is None:
        raise StoreError("no store named: pass --store DIR|postgresql://… or set PRIORLAB_STORE")
    return str(store), None if artifacts is None else str(artifacts)
