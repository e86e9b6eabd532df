"""The one writer: a Ray actor pinned to the driver's node that owns the results store.

Trials on any node send their rows and PNG bytes here through Ray, so no node needs a
shared disk with the driver. Calls from one trial run in the order it made them; `log` and
`finish_run` are queued in that order and committed in groups (cluster/group_commit.py), so a
trial's final `finish_run` lands after all of its rows. Whoever reads the store for what the
trials did (the sweep, when they are over) calls `flush` first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from priorlab import vocab
from priorlab.analysis import claims
from priorlab.analysis.partial import summary_from_metrics
from priorlab.analysis.store import Store, StoreError, is_db_url, png_size
from priorlab.cluster.group_commit import Finish, GroupCommit, Log
from priorlab.cluster.items import from_tune


# The environment the store's libraries read their endpoints and credentials from (libpq,
# boto/s3fs, gcsfs, adlfs, fsspec). The writer actor runs in a Ray worker whose environment is
# the raylet's, not the driver's; the driver hands these over as constructor arguments (never
# a runtime_env, which Ray's dashboard displays), so a store URL never needs to carry them.
STORAGE_ENV_PREFIXES = ("PG", "AWS_", "FSSPEC_", "GOOGLE_", "GCE_", "AZURE_", "PRIORLAB_")


def storage_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV_PREFIXES)}


class StoreWriter:
    """`owner`: the driver's claim identity (`claims.new_owner()` on the driver, so its
    process id is the one a later sweep checks); this writer renews its claims while it lives.
    `ended`: owners of the driver's sweeps that are over (`claims.end_owner`)."""

    def __init__(self, root: str, artifacts: str | None = None, env: dict[str, str] | None = None,
                 owner: str | None = None, ended: list[str] | None = None):
        os.environ.update(env or {})
        for gone in ended or ():  # the driver's earlier sweeps (claims.end_owner): their claims are stale
            claims.end_owner(gone)
        self.store = Store(root, artifacts=artifacts)
        self.owner = owner or claims.new_owner()
        self.lease = claims.Lease(self.store, self.owner)
        self.pruned: set[str] = set()  # runs this writer marked pruned (their summary follows their rows)
        self.started: dict[str, float] = {}  # run id -> when its trial claimed it (a pruned run's wall time)
        self.sharded: set[str] = set()  # runs whose shards this writer handed out (dropped once finished)
        # On a database server the queued writes commit through a store of their own, i.e.
        # their own connection: a trial's claim (its first call, which it waits for) then never
        # queues behind a batch's transaction, holding up this actor's thread and every call
        # behind it (bench_shared_store). SQLite takes one writer at a time whatever the
        # connection, and its busy wait sleeps far longer than this process's lock.
        committer = Store(root, artifacts=artifacts) if is_db_url(root) else self.store
        if hasattr(committer.files, "upload_in_child"):  # object storage: uploads beside this GIL
            committer.files.upload_in_child()
        self.commits = GroupCommit(committer, self.owner, on_finished=self._drop_shards)

    def upsert_sweep(self, name: str, config_text: str, host: str) -> None:
        self.store.upsert_sweep(name, config_text, host)

    def set_sweep_status(self, name: str, status: str) -> None:
        self.store.set_sweep_status(name, status)

    def register_runs(self, sweep: str, runs: list[dict[str, Any]]) -> None:
        self.store.register_runs(sweep, runs)

    def start_run(self, run_id: str, node: str | None, force: bool = False) -> bool:
        """Claim the run for a trial; False when it is done already (another sweep on this
        store finished it) and `force` is off: the trial then skips it."""
        self.commits.wait_for([run_id])  # an earlier attempt's rows and finish land first
        self.started[run_id] = time.time()
        return self.store.start_run(run_id, node=node, force=force, owner=self.owner)

    def statuses(self, run_ids: list[str]) -> dict[str, str]:
        self.commits.wait_for(run_ids)
        return self.store.run_status(run_ids)

    def log(self, run_id: str, rows: list[tuple[int, str, float]], images: list[tuple[int, str, bytes]]) -> None:
        """One batch from a trial: metric rows and PNG artifacts, queued (a PNG that is not one
        is refused here, in the trial's call)."""
        for _, _, png in images:
            png_size(png)
        self.commits.put(Log(run_id, list(rows), list(images)))
        if rows and run_id in self.pruned:  # a stopped trial's last step lands after the prune
            self.commits.wait_for([run_id])
            self._summarize_pruned(run_id)

    def finish_run(self, run_id: str, status: str, summary: dict | None, error: str | None,
                   sent: tuple[int, int] | None = None) -> None:
        """Queued after the run's rows. `sent`: the (metric rows, artifacts) the trial sent;
        fewer stored makes the run an error."""
        self.commits.put(Finish(run_id, status, summary, error, sent))

    def flush(self) -> None:
        """Until everything queued is committed; raises the error that stopped the writer (the
        store went away), if one did."""
        self.commits.wait_for()

    def _drop_shards(self, run_ids: list[str]) -> None:
        """After a commit: a finished run's shards are never read again."""
        sharded = [r for r in run_ids if r in self.sharded]
        if not sharded:
            return
        for run_id, status in self.store.run_status(sharded).items():
            if status in vocab.COMPLETED:
                self.store.files.drop_shards(run_id)
                self.sharded.discard(run_id)

    def mark_unfinished(self, run_ids: list[str], status: str = "interrupted") -> None:
        self.commits.wait_for(run_ids)
        changed = self.store.mark_unfinished(run_ids, status=status, owner=self.owner)
        if status == "pruned" and changed:
            for run_id in run_ids:
                self.pruned.add(run_id)
                self._summarize_pruned(run_id)

    def _summarize_pruned(self, run_id: str) -> None:
        """Give a pruned run the summary of what it ran (analysis/partial.py); a run that
        finished meanwhile keeps its own."""
        if self.store.run_status([run_id]).get(run_id) != "pruned":
            self.pruned.discard(run_id)
            return
        began = self.started.get(run_id)
        summary = summary_from_metrics(self.store.metrics(run_ids=[run_id]),
                                       wall_s=None if began is None else time.time() - began)
        self.store.finish_run(run_id, "pruned", summary or None, owner=self.owner)

    def fail_running(self, run_id: str, error: str) -> bool:
        """`error` for a run still `running` whose trial can no longer record anything itself
        (its worker process died); a run that finished or recorded its own error is kept."""
        self.commits.wait_for([run_id])
        return self.store.mark_unfinished([run_id], status="error", error=error, owner=self.owner) > 0

    def ping(self) -> bool:
        return True

    # A sharded run's scored shards wait in the store's files until its finishing trial
    # collects them (kept, so a resumed sweep does not score a shard twice).
    def put_shard(self, run_id: str, index: int, data: bytes) -> None:
        self.store.files.put_shard(run_id, index, data)

    def shards_present(self, run_id: str) -> list[int]:
        return self.store.files.shards_present(run_id)

    def get_shards(self, run_id: str, n_shards: int) -> list[bytes]:
        self.sharded.add(run_id)
        return self.store.files.get_shards(run_id, n_shards)


def start_writer(root: str | Path, artifacts: str | None = None,
                 owner: str | None = None) -> "ray.actor.ActorHandle":
    """Start the writer on this (the driver's) node; it dies with the driver."""
    # Open it here first: a damaged, unwritable or newer store, or a server that cannot be
    # reached, is then a one-line StoreError on the driver, not an actor that died starting.
    Store(root, artifacts=artifacts).close()
    here = ray.get_runtime_context().get_node_id()
    name = str(root) if is_db_url(str(root)) else str(Path(root).resolve())
    actor = (
        ray.remote(StoreWriter)
        .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
        .remote(name, artifacts, storage_env(), owner or claims.new_owner(), claims.ended_owners())
    )
    ray.get(actor.ping.remote())  # surface a store error (bad path, newer schema) now
    return actor


class TrialDeathCallback(tune.Callback):
    """Records a trial that failed for good without recording its own failure.

    A trial that raises writes its traceback itself before Tune sees the failure. One whose
    worker process died (a segfault, the kernel's OOM killer, a SIGKILL) cannot: its run
    would stay `running` and later be called `interrupted`, as if the user had pressed
    Ctrl-C. Tune calls `on_trial_error` once retries are exhausted; the run then becomes an
    `error` carrying what Ray knows of the death (the actor-died message Tune stored).
    """

    def __init__(self, writer, on_store_away=None):
        self.writer = writer
        # Called once when the store itself cannot be written (its database or object store
        # went away): the sweep then stops at once instead of failing every remaining trial.
        self.on_store_away = on_store_away

    # Tune pickles its run config (for Tuner.restore, which priorlab never uses): the hook holds
    # this process's stop event, which neither pickles nor means anything elsewhere.
    def __getstate__(self) -> dict:
        return {**self.__dict__, "on_store_away": None}

    def on_trial_error(self, iteration, trials, trial, **info):
        pack = trial.config.get("pack")
        if pack is not None:  # a packed trial: every member it was still fitting died with it
            ids = [r.run_id for r in from_tune(pack).runs]
        elif trial.config.get("trial"):
            from priorlab.cluster.search import run_id_of  # an Optuna trial's run id comes from its suggestion

            ids = [run_id_of(trial.config)]
        else:  # a shard trial: its run fails in its finishing trial ("never scored")
            return
        text = death_text(trial)
        try:
            ray.get([self.writer.fail_running.remote(run_id, text) for run_id in ids if run_id])
        except StoreError:  # the store itself is away: the run stays `running`, a resume reruns it
            if self.on_store_away is not None:
                self.on_store_away()


def death_text(trial) -> str:
    """Tune's record of a trial's failures, ending in one line a summary can show."""
    text = ""
    try:  # Tune writes it beside the trial's local state first (its storage copy comes later)
        path = trial.error_file
        if path and Path(path).is_file():
            text = Path(path).read_text(errors="replace").strip()
        if not text:
            text = str(trial.get_error() or "").strip()
    except Exception as e:  # the error file is Tune's bookkeeping; never lose the run over it
        text = f"(Tune's error record could not be read: {e})"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
    # Ray's "Worker exit type: ..." line says how the process ended; keep it short.
    why = next((line for line in lines if "exit type" in line), lines[0] if lines else "no error text from Ray")
    why = why.split(" Some common causes")[0][:300]
    return f"{text}\nthe trial's worker process died before recording a result: {why}"
