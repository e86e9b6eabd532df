"""One Tune trial: run a task with a sink that forwards to the store writer and to Tune."""

from __future__ import annotations

import io
import math
import os
import time
import traceback
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from priorlab.cluster import inputs as input_files
from priorlab.tasks.images import png_bytes
from priorlab.tasks.registry import KINDS


# How often a trial that wants a run another sweep is running looks again.
CLAIM_POLL_S = 2.0


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
    return [r for r, claimed in zip(run_ids, ok) if claimed], [r for r in refused if status.get(r) == "running"]


def wait_for_claim(writer, run_id: str, node: str, force: bool) -> bool:
    """Claim the run, waiting while another live sweep runs it; False when it ended up final
    (that sweep finished it: keep its result). A dead sweep's claim lapses (`claims.py`), so
    the wait ends."""
    while True:
        claimed, busy = claim_runs(writer, [run_id], node, force)
        if claimed or not busy:
            return bool(claimed)
        time.sleep(CLAIM_POLL_S)


def finish_failed(writer, sink: RaySink, run_id: str, error: str) -> None:
    """Record a run's failure (its traceback), after sending what it has; a write that fails
    meanwhile is added to the error text, never hides it."""
    try:
        sink.flush()
    except Exception as e:
        error += f"\nwhile storing its rows: {type(e).__name__}: {e}"
    ray.get(writer.finish_run.remote(run_id, "error", None, error))


def _tune_scalars(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) and not (isinstance(v, float) and math.isnan(v))}


def run_trial(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable. `config["trial"]` is one `{"run_id", "kind", "params"}` of the sweep
    (with `"force": True` under `--force`, to rerun a run the store holds as done); `inputs`
    the sweep's input files in the object store (cluster/inputs.py)."""
    trial = config["trial"]
    run_id, kind = trial["run_id"], KINDS[trial["kind"]]
    torch.set_num_threads(max(1, int(trial["resources"].get("CPU", 1))))
    input_files.materialize(inputs)  # user files travel with the trial, not by a shared disk

    params = kind.params(**trial["params"])
    n_shards = kind.sharding.count(params) if kind.sharding else 1
    node = ray.get_runtime_context().get_node_id()
    if not wait_for_claim(writer, run_id, node, bool(trial.get("force"))):
        # Another sweep on this store finished the run after this one decided to run it:
        # keep that result (only --force reruns a done run).
        tune.report({"run_id": run_id, "status": "skipped", "pid": os.getpid()})
        return
    sink = RaySink(writer, run_id)
    try:
        if n_shards > 1:  # the shards were scored by their own trials; gather and finish
            blobs = ray.get(writer.get_shards.remote(run_id, n_shards))
            shards = [dict(np.load(io.BytesIO(b), allow_pickle=False)) for b in blobs]
            summary = kind.sharding.finish(params, shards, sink)
        else:
            summary = kind.run(params, sink)
        sink.flush()  # a write that failed fails the run here
    except Exception:
        # Recorded before re-raising so Tune can retry it (FailureConfig) and the store
        # keeps the traceback if no retry succeeds.
        finish_failed(writer, sink, run_id, traceback.format_exc())
        raise
    summary.update(input_files.run_hashes(params, inputs))  # a file changed before a resume is noticed
    status = summary.get("status", "done")
    if ray.get_gpu_ids():  # issue 11: which GPU Ray gave this trial (priorlab runs shows it)
        summary["gpu_ids"] = ",".join(str(i) for i in ray.get_gpu_ids())
    ray.get(writer.finish_run.remote(run_id, status, summary, None, sink.sent()))
    tune.report({"run_id": run_id, "status": status, "pid": os.getpid(), **_tune_scalars(summary)})


def run_shard(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of one shard: score it and hand the arrays to the writer."""
    shard = config["shard"]
    kind = KINDS[shard["kind"]]
    torch.set_num_threads(max(1, int(shard["resources"].get("CPU", 1))))
    input_files.materialize(inputs)
    arrays = kind.sharding.score(kind.params(**shard["params"]), shard["index"], shard["n"])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ray.get(writer.put_shard.remote(shard["run_id"], shard["index"], buf.getvalue()))
    tune.report({"run_id": shard["run_id"], "shard": shard["index"]})
