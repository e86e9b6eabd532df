"""One Tune trial of a packed sweep: K DIP runs fitted together, each recorded as its own run.

The trial claims every member's run in the store (skipping one that another sweep finished),
fits them with `priorlab.tasks.dip.pack.run_pack` through one writer-forwarding sink per member (the
same rows and images an unpacked trial sends), and finishes each member with its own status and summary (plus `pack_id`,
`pack_size` and, on a GPU, `gpu_ids`). A diverged member is finished `diverged` while the
others go on. Items of a packed sweep that are not packs (baselines, StyleGAN runs) run as
ordinary trials.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import ray
import torch
from ray import tune

from priorlab.cluster.trial import RaySink, _tune_scalars, run_trial
from priorlab.tasks.dip.pack import run_pack
from priorlab.cluster import inputs as input_files
from priorlab.tasks.registry import KINDS


class MemberSink(RaySink):
    """A member's rows and images go to the writer under its own run id; Tune hears from the
    pack once at the end (K members reporting each step would look like K trials' results)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        rows = [(step, k, float(v)) for k, v in values.items()]
        self.writer.log.remote(self.run_id, rows, self.images)
        self.images = []


def gpu_ids() -> str | None:
    """The GPUs Ray assigned this trial, as "0" or "0,1"; None when it has none."""
    ids = ray.get_gpu_ids()
    return ",".join(str(i) for i in ids) if ids else None


def run_pack_trial(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of a packed sweep. `config["pack"]` is an item of `packing.pack_trials`."""
    item = config["pack"]
    if "members" not in item:  # a run that does not pack: an ordinary trial
        return run_trial({"trial": item}, writer=writer, inputs=inputs)
    torch.set_num_threads(max(1, int(item["resources"].get("CPU", 1))))
    input_files.materialize(inputs)

    node = ray.get_runtime_context().get_node_id()
    # Claim each member as run_trial claims its run: one that another sweep on this store
    # finished meanwhile is skipped (only --force reruns a done run).
    claimed = ray.get([writer.start_run.remote(m["run_id"], node, bool(m.get("force"))) for m in item["members"]])
    members = [m for m, ok in zip(item["members"], claimed) if ok]
    if not members:
        tune.report({"pack_id": item["pack_id"], "status": "skipped", "pid": os.getpid()})
        return
    params = [KINDS[m["kind"]].params(**m["params"]) for m in members]
    sinks = [MemberSink(writer, m["run_id"]) for m in members]
    try:
        summaries = run_pack(params, sinks, pack_id=item["pack_id"])
    except Exception:
        error = traceback.format_exc()
        for sink in sinks:
            sink.flush()
        ray.get([writer.finish_run.remote(m["run_id"], "error", None, error) for m in members])
        raise
    assigned = gpu_ids()
    finishing = []
    for m, sink, summary, member_params in zip(members, sinks, summaries, params):
        sink.flush()
        if assigned is not None:
            summary["gpu_ids"] = assigned
        summary.update(input_files.run_hashes(member_params, inputs))
        finishing.append(writer.finish_run.remote(m["run_id"], summary.get("status", "done"), summary, None))
    ray.get(finishing)
    statuses = [s.get("status", "done") for s in summaries]
    best = [s["best_psnr"] for s in summaries if s.get("best_psnr") is not None]
    tune.report({
        "pack_id": item["pack_id"], "pack_size": len(members), "pid": os.getpid(),
        "done": statuses.count("done"), "diverged": statuses.count("diverged"),
        **({"best_psnr": max(best)} if best else {}),
        **{k: v for k, v in _tune_scalars(summaries[0]).items() if k in ("iters_per_s", "wall_s", "device")},
    })
