"""One Tune trial: run a task with a sink that forwards to the store writer and to Tune."""

from __future__ import annotations

import io
import math
import os
import time
import traceback
from typing import Any, Callable

import numpy as np
import ray
import torch
from ray import tune

from priorlab import vocab
from priorlab.cluster import inputs as input_files
from priorlab.cluster.items import RunSpec, ShardItem, TrialItem, WorkItem, from_tune
from priorlab.tasks.images import png_bytes
from priorlab.tasks.registry import KINDS


# How often a trial that wants a run another sweep is running looks again.
CLAIM_POLL_S = 2.0
# A Tune report's status for a trial whose runs another sweep finished (never a store status).
SKIPPED = "skipped"


class RaySink:
    """Sends each logging step's rows and images to the writer actor and reports the scalars
    to Tune. Sends do not wait, but their results are collected: a write the writer could not
    make (an unwritable artifacts folder, a full disk) raises here, in the trial, at the next
    event or at `flush()`, so the run fails instead of ending `done` without its rows. `sent()`
    counts the distinct rows sent, which `finish_run` checks against what was stored."""

    def __init__(self, writer, run_id: str):
        self.writer, self.run_id = writer, run_id
        self.images: list[tuple[int, str, bytes]] = []
        self.pending: list = []  # ObjectRefs of writes not yet known to have succeeded
        self.metric_keys: set[tuple[int, str]] = set()
        self.artifact_keys: set[tuple[int, str]] = set()

    def send(self, rows: list[tuple[int, str, float]]) -> None:
        self.pending.append(self.writer.log.remote(self.run_id, rows, self.images))
        self.metric_keys.update((step, name) for step, name, _ in rows)
        self.artifact_keys.update((step, name) for step, name, _ in self.images)
        self.images = []
        done, self.pending = ray.wait(self.pending, num_returns=len(self.pending), timeout=0)
        ray.get(done)  # re-raises the writer's error, if any

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.send([(step, k, float(v)) for k, v in values.items()])
        tune.report({"step": step, **{k: float(v) for k, v in values.items()}})

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        # Encoded here, on the trial's node, so only PNG bytes cross the network.
        self.images.append((step, name, png_bytes(image)))

    def flush(self) -> None:
        """Send what is queued and wait for every write: raises the first one that failed."""
        if self.images:
            self.send([])
        pending, self.pending = self.pending, []
        ray.get(pending)

    def sent(self) -> tuple[int, int]:
        return len(self.metric_keys), len(self.artifact_keys)


def claim_runs(writer, run_ids: list[str], node: str, force: bool) -> tuple[list[str], list[str]]:
    """Claim what can be claimed now: (claimed ids, ids another live sweep is running).
    Those another sweep finished are in neither: the trial skips them."""
    ok = ray.get([writer.start_run.remote(r, node, force) for r in run_ids])
    refused = [r for r, claimed in zip(run_ids, ok) if not claimed]
    status = ray.get(writer.statuses.remote(refused)) if refused else {}
    return [r for r, claimed in zip(run_ids, ok) if claimed], [r for r in refused if status.get(r) == vocab.RUNNING]


def finish_failed(writer, sink: RaySink, run_id: str, error: str) -> None:
    """Record a run's failure (its traceback), after sending what it has; a write that fails
    meanwhile is added to the error text, never hides it."""
    try:
        sink.flush()
    except Exception as e:
        error += f"\nwhile storing its rows: {type(e).__name__}: {e}"
    ray.get(writer.finish_run.remote(run_id, vocab.ERROR, None, error))


def gpu_ids() -> str | None:
    """The GPUs Ray assigned this trial, as "0" or "0,1"; None when it has none."""
    ids = ray.get_gpu_ids()
    return ",".join(str(i) for i in ids) if ids else None


def tune_scalars(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) and not (isinstance(v, float) and math.isnan(v))}


def begin(item: WorkItem, inputs: dict[str, dict] | None) -> None:
    """What every trainable does first: as many torch threads as CPUs the trial asked for, and
    the sweep's input files on this node (they travel with the trial, not by a shared disk)."""
    torch.set_num_threads(max(1, int(item.resources.get("CPU", 1))))
    input_files.materialize(inputs)


# fit(task params of the claimed runs, one sink each) -> their summaries, in the same order
Fit = Callable[[list[Any], list[RaySink]], list[dict[str, Any]]]


def claim_run_finish(writer, runs: list[RunSpec], inputs: dict[str, dict] | None, fit: Fit,
                     sink_type: type[RaySink] = RaySink) -> list[dict[str, Any]]:
    """Claim `runs` in the store, fit the claimed ones, finish each; the summaries of those
    this trial ran (none: another sweep on this store finished them all; keep its results,
    only --force reruns a done run).

    A run another live sweep is running is waited for, outside any claim of this trial (two
    packs waiting on each other's members would never end): the runs claimed now are fitted
    first, then the rest once their claim lapses or ends. A fit that raises finishes each of
    its runs as an error with the traceback, then re-raises so Tune can retry it
    (FailureConfig) and the store keeps the traceback if no retry succeeds."""
    params = {r.run_id: r.task_params() for r in runs}  # an invalid run fails before any claim
    node = ray.get_runtime_context().get_node_id()
    waiting, summaries = list(runs), []
    while waiting:
        by_id = {r.run_id: r for r in waiting}
        claimed, busy = claim_runs(writer, list(by_id), node, any(r.force for r in waiting))
        now, waiting = [by_id[r] for r in claimed], [by_id[r] for r in busy]
        if now:
            summaries += _run_claimed(writer, now, [params[r.run_id] for r in now], inputs, fit, sink_type)
        elif waiting:
            time.sleep(CLAIM_POLL_S)
    return summaries


def _run_claimed(writer, runs: list[RunSpec], params: list[Any], inputs, fit: Fit, sink_type):
    sinks = [sink_type(writer, r.run_id) for r in runs]
    try:
        summaries = fit(params, sinks)
        for sink in sinks:
            sink.flush()  # a write that failed fails the runs here
    except Exception:
        error = traceback.format_exc()
        for r, sink in zip(runs, sinks):
            finish_failed(writer, sink, r.run_id, error)
        raise
    assigned = gpu_ids()  # issue 11: which GPU Ray gave this trial (priorlab runs shows it)
    gpu = {"gpu_ids": assigned} if assigned is not None else {}
    for summary, p in zip(summaries, params):
        hashes = input_files.run_hashes(p, inputs)  # a file changed before a resume is noticed
        summary.update({**hashes, **gpu})
    ray.get([writer.finish_run.remote(r.run_id, s.get("status", vocab.DONE), s, None, sink.sent())
             for r, sink, s in zip(runs, sinks, summaries)])
    return summaries


def run_trial(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of one run: `config["trial"]` a `TrialItem` (`items.to_tune`); `inputs`
    the sweep's input files in the object store (cluster/inputs.py)."""
    run_one(from_tune(config["trial"]), writer, inputs)


def run_one(item: TrialItem, writer, inputs: dict[str, dict] | None) -> None:
    """Run the item's run and report it to Tune once (its steps are reported as they come)."""
    run = item.run
    kind = KINDS[run.kind]
    begin(item, inputs)

    def fit(params: list[Any], sinks: list[RaySink]) -> list[dict[str, Any]]:
        (p,), (sink,) = params, sinks
        n_shards = kind.sharding.count(p) if kind.sharding else 1
        if n_shards > 1:  # the shards were scored by their own trials; gather and finish
            blobs = ray.get(writer.get_shards.remote(run.run_id, n_shards))
            shards = [dict(np.load(io.BytesIO(b), allow_pickle=False)) for b in blobs]
            return [kind.sharding.finish(p, shards, sink)]
        return [kind.run(p, sink)]

    summaries = claim_run_finish(writer, [run], inputs, fit)
    if not summaries:
        tune.report({"run_id": run.run_id, "status": SKIPPED, "pid": os.getpid()})
        return
    (summary,) = summaries
    status = summary.get("status", vocab.DONE)
    tune.report({"run_id": run.run_id, "status": status, "pid": os.getpid(), **tune_scalars(summary)})


def run_shard(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of one shard (a `ShardItem`): score it and hand the arrays to the writer."""
    item: ShardItem = from_tune(config["shard"])
    kind = KINDS[item.kind]
    begin(item, inputs)
    arrays = kind.sharding.score(item.run.task_params(), item.index, item.n)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ray.get(writer.put_shard.remote(item.run.run_id, item.index, buf.getvalue()))
    tune.report({"run_id": item.run.run_id, "shard": item.index})
