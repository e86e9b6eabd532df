"""One Tune trial: run a task with a sink that forwards to the store writer and to Tune."""

from __future__ import annotations

import io
import math
import os
import traceback
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from priorlab.cluster import inputs as input_files
from priorlab.tasks.images import png_bytes
from priorlab.tasks.registry import KINDS


class RaySink:
    """Sends each logging step's rows and images to the writer actor (fire and forget:
    calls from one trial are applied in order) and reports the scalars to Tune."""

    def __init__(self, writer, run_id: str):
        self.writer, self.run_id = writer, run_id
        self.images: list[tuple[int, str, bytes]] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        rows = [(step, k, float(v)) for k, v in values.items()]
        self.writer.log.remote(self.run_id, rows, self.images)
        self.images = []
        tune.report({"step": step, **{k: float(v) for k, v in values.items()}})

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        # Encoded here, on the trial's node, so only PNG bytes cross the network.
        self.images.append((step, name, png_bytes(image)))

    def flush(self) -> None:
        if self.images:
            self.writer.log.remote(self.run_id, [], self.images)
            self.images = []


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
    if not ray.get(writer.start_run.remote(run_id, node, bool(trial.get("force")))):
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
    except Exception:
        sink.flush()
        # Recorded before re-raising so Tune can retry it (FailureConfig) and the store
        # keeps the traceback if no retry succeeds.
        ray.get(writer.finish_run.remote(run_id, "error", None, traceback.format_exc()))
        raise
    sink.flush()
    summary.update(input_files.run_hashes(params, inputs))  # a file changed before a resume is noticed
    status = summary.get("status", "done")
    if ray.get_gpu_ids():  # issue 11: which GPU Ray gave this trial (priorlab runs shows it)
        summary["gpu_ids"] = ",".join(str(i) for i in ray.get_gpu_ids())
    ray.get(writer.finish_run.remote(run_id, status, summary, None))
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
