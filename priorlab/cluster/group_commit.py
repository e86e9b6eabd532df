"""Group commit: the writer's rows, files and finishes, committed in batches by one thread.

A sweep's trials send the writer one small batch per logged step. Written one at a time,
each costs a transaction (a round trip to a database server) and its images one upload at a
time. Queued instead, and committed by a background thread, the batches that arrive while one
commits share the next transaction, and their images upload concurrently, while the writer
actor goes on taking calls (tests/benchmarks/bench_shared_store.py measures it).

What stays true:
- A run's rows are committed before its finish, in the same or an earlier transaction, so
  `done` still implies complete rows (`Store.finish_run` compares them with what was sent).
- Files before rows: a row never names a file that is not stored.
- A batch is one transaction. When the store cannot be reached (`StoreAway`) or its disk is
  full, it rolls back and every later call raises that error: the sweep stops with that one
  line, the lost batch's runs stay `running`, and the same command reruns them once the store
  is back.
- A write that fails for one run only (its image cannot be stored) does not take its batch
  down: the batch is retried an item at a time, and that run finishes as `error` saying why.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from priorlab import vocab
from priorlab.analysis.schema import disk_full
from priorlab.analysis.store import Store, StoreAway
from priorlab.cluster.cli_errors import first_line

# Queued image bytes from which `put` waits for the committer: a bound on the writer's memory
# when trials send faster than the store takes them.
MAX_QUEUED_BYTES = 256 * 2**20
# How long the committer lets a burst gather before it takes the queue, unless this many items
# are queued already (PostgreSQL's commit_delay, for the same reason). Taken at once, the queue
# held one or two items each time (the actor's thread queues them one call at a time), and each
# paid a transaction and an upload call of its own: on a database server and object storage
# that client and server CPU was the writer's limit (bench_shared_store). A row then lands up to
# 50 ms later, and `wait_for` waits as much longer.
LINGER_S, LINGER_ITEMS = 0.05, 128


@dataclass
class Log:
    """One trial batch: `rows` (step, name, value), `images` (step, name, PNG bytes)."""

    run_id: str
    rows: list[tuple[int, str, float]]
    images: list[tuple[int, str, bytes]]

    @property
    def size(self) -> int:
        return sum(len(png) for _, _, png in self.images) + 32 * len(self.rows)


@dataclass
class Finish:
    """A run's final status, summary and error; `sent`: the (rows, images) its trial sent."""

    run_id: str
    status: str
    summary: dict[str, Any] | None
    error: str | None
    sent: tuple[int, int] | None = None
    size: int = field(default=0, repr=False)


Item = Log | Finish


class GroupCommit:
    """The queue and its committing thread. `owner`: the claim identity finishes are fenced by;
    `on_finished(run_ids)`: called in the thread after a batch with finishes committed."""

    def __init__(self, store: Store, owner: str, on_finished: Callable[[list[str]], None] | None = None):
        self.store, self.owner, self.on_finished = store, owner, on_finished
        self._queue: list[Item] = []
        self._queued_bytes = 0
        self._pending: Counter[str] = Counter()  # run id -> its items queued or being committed
        self._failed: BaseException | None = None
        self._cond = threading.Condition()
        self.run_errors: dict[str, str] = {}  # run id -> why a write of it failed (it finishes as error)
        threading.Thread(target=self._loop, name="priorlab-group-commit", daemon=True).start()

    def put(self, item: Item) -> None:
        """Queue `item`; raises the error that stopped the committer, if one did."""
        with self._cond:
            self._cond.wait_for(lambda: self._failed is not None or self._queued_bytes < MAX_QUEUED_BYTES)
            self._raise_failed()
            self._queue.append(item)
            self._queued_bytes += item.size
            self._pending[item.run_id] += 1
            self._cond.notify_all()

    def wait_for(self, run_ids: Iterable[str] | None = None) -> None:
        """Until what was queued for `run_ids` (None: for every run) is committed; raises the
        error that stopped the committer, if one did."""
        ids = None if run_ids is None else set(run_ids)

        def settled() -> bool:
            if self._failed is not None:
                return True
            return not self._pending if ids is None else not any(self._pending[r] for r in ids)

        with self._cond:
            self._cond.wait_for(settled)
            self._raise_failed()

    def _raise_failed(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _loop(self) -> None:
        """Stage one: take what is queued, store its files, hand it to stage two. The next
        batch's uploads overlap this one's transaction."""
        rows: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._rows_loop, args=(rows,), name="priorlab-group-commit-rows", daemon=True).start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                short = len(self._queue) < LINGER_ITEMS
            if short:  # a plain sleep: woken by every `put`, the thread would take the GIL as often
                time.sleep(LINGER_S)
            with self._cond:
                batch, self._queue, self._queued_bytes = self._queue, [], 0
                self._cond.notify_all()  # a `put` waiting for room goes on
            for segment in _segments(batch):
                stored = None
                if self._failed is None:
                    try:
                        stored = self._store_files(segment)
                    except BaseException as e:  # the store went away: everything from here is refused
                        self._fail(e)
                rows.put((segment, stored))

    def _rows_loop(self, rows: queue.SimpleQueue) -> None:
        """Stage two: a segment's rows and finishes in one transaction, in the order queued."""
        while True:
            segment, stored = rows.get()
            try:
                if self._failed is None and stored is not None:
                    self._commit(segment, stored)
            except BaseException as e:
                self._fail(e)
            finally:
                with self._cond:
                    self._pending.subtract(item.run_id for item in segment)
                    self._pending = +self._pending  # drop the zeros
                    self._cond.notify_all()

    def _fail(self, e: BaseException) -> None:
        with self._cond:
            if self._failed is None:
                self._failed = e
            self._cond.notify_all()

    def _store_files(self, items: list[Item]) -> list[list | None]:
        """Each item's stored images as (sha256, width, height), in its order; None for an item
        whose images could not be stored (its run then finishes as error)."""
        files = self.store.files
        try:
            put = iter(files.put_artifacts([png for item in items if isinstance(item, Log) for *_, png in item.images]))
            return [[next(put) for _ in item.images] if isinstance(item, Log) else [] for item in items]
        except Exception as e:  # one item's fault, or the batch's? Each alone says which.
            _raise_fatal(e)
            out: list[list | None] = []
            for item in items:
                try:
                    out.append(files.put_artifacts([png for *_, png in item.images]) if isinstance(item, Log) else [])
                except Exception as e:
                    _raise_fatal(e)
                    self._lost(item.run_id, e)
                    out.append(None)
            return out

    def _commit(self, items: list[Item], stored: list[list | None]) -> None:
        try:
            self._write(items, stored)
        except Exception as e:
            _raise_fatal(e)
            for item, put in zip(items, stored):
                try:
                    self._write([item], [put])
                except Exception as e:
                    _raise_fatal(e)
                    self._lost(item.run_id, e)
        finished = [i.run_id for i in items if isinstance(i, Finish)]
        if finished and self.on_finished is not None:
            self.on_finished(finished)

    def _lost(self, run_id: str, e: Exception) -> None:
        self.run_errors.setdefault(run_id, f"{type(e).__name__}: {first_line(e)}")

    def _write(self, items: list[Item], stored: list[list | None]) -> None:
        with self.store.batch(savepoints=False):  # on any error _commit retries item by item
            logs = [(item, put) for item, put in zip(items, stored) if isinstance(item, Log)]
            rows = [(log.run_id, step, name, value) for log, _ in logs for step, name, value in log.rows]
            if rows:
                self.store.log_metrics_rows(rows)
            images = [(log.run_id, int(step), name, sha, width, height) for log, put in logs if put is not None
                      for (step, name, _), (sha, width, height) in zip(log.images, put)]
            if images:
                self.store.log_artifact_rows(images)
            for item in items:
                if isinstance(item, Finish):
                    self._finish(item)

    def _finish(self, f: Finish) -> None:
        status, error = f.status, f.error
        lost = self.run_errors.get(f.run_id)
        if lost:  # rows of this run could not be stored: never `done`
            status = vocab.ERROR
            error = (f"{error}\n" if error else "") + f"its results could not all be stored: {lost}"
        self.store.finish_run(f.run_id, status, summary=f.summary, error=error, owner=self.owner, sent=f.sent)


def _raise_fatal(e: Exception) -> None:
    """Re-raise what no write can get past (the store is away, its disk is full)."""
    if isinstance(e, StoreAway) or disk_full(e):
        raise e


def _segments(batch: list[Item]) -> list[list[Item]]:
    """`batch` cut where a run's item follows that run's finish. A transaction writes its rows
    before its finishes, and a finish must count only the rows sent before it (a trial logs
    nothing after its finish, and a rerun's claim waits for the run's queue; this keeps the
    order even so)."""
    segments: list[list[Item]] = [[]]
    finished: set[str] = set()
    for item in batch:
        if item.run_id in finished:
            segments.append([])
            finished = set()
        segments[-1].append(item)
        if isinstance(item, Finish):
            finished.add(item.run_id)
    return [s for s in segments if s]
