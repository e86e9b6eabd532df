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
import time
import traceback
from typing import Any

import ray
import torch
from ray import tune

from priorlab.cluster.trial import CLAIM_POLL_S, RaySink, _tune_scalars, claim_runs, finish_failed, run_trial
from priorlab.tasks.dip.pack import run_pack
from priorlab.cluster import inputs as input_files
from priorlab.tasks.registry import KINDS


class MemberSink(RaySink):
    """A member's rows and images go to the writer under its own run id; Tune hears from the
    pack once at the end (K members reporting each step would look like K trials' results)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.send([(step, k, float(v)) for k, v in values.items()])


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
    # finished meanwhile is skipped (only --force reruns a done run); one another live sweep is
    # running waits, but outside any claim of this trial (two packs waiting on each other's
    # members would never end): the members claimed now are fitted first, then the rest.
    waiting, fitted, statuses, best, extra = list(item["members"]), 0, [], [], {}
    while waiting:
        by_id = {m["run_id"]: m for m in waiting}
        force = any(m.get("force") for m in waiting)
        claimed, busy = claim_runs(writer, list(by_id), node, force)
        members = [by_id[r] for r in claimed]
        waiting = [by_id[r] for r in busy]
        if members:
            summaries = _fit_pack(item, members, writer, inputs)
            fitted += len(members)
            statuses += [s.get("status", "done") for s in summaries]
            best += [s["best_psnr"] for s in summaries if s.get("best_psnr") is not None]
            extra = {k: v for k, v in _tune_scalars(summaries[0]).items() if k in ("iters_per_s", "wall_s", "device")}
        elif waiting:
            time.sleep(CLAIM_POLL_S)
    if not fitted:
        tune.report({"pack_id": item["pack_id"], "status": "skipped", "pid": os.getpid()})
        return
    tune.report({
        "pack_id": item["pack_id"], "pack_size": fitted, "pid": os.getpid(),
        "done": statuses.count("done"), "diverged": statuses.count("diverged"),
        **({"best_psnr": max(best)} if best else {}), **extra,
    })


def _fit_pack(item: dict[str, Any], members: list[dict[str, Any]], writer,
              inputs: dict[str, dict] | None) -> list[dict[str, Any]]:
    """Fit the claimed `members` as one pack and finish each; their summaries."""
    params = [KINDS[m["kind"]].params(**m["params"]) for m in members]
    sinks = [MemberSink(writer, m["run_id"]) for m in members]
    try:
        summaries = run_pack(params, sinks, pack_id=item["pack_id"])
        for sink in sinks:
            sink.flush()  # a write that failed fails the pack here
    except Exception:
        error = traceback.format_exc()
        for m, sink in zip(members, sinks):
            finish_failed(writer, sink, m["run_id"], error)
        raise
    assigned = gpu_ids()
    for summary, member_params in zip(summaries, params):
        if assigned is not None:
            summary["gpu_ids"] = assigned
        summary.update(input_files.run_hashes(member_params, inputs))
    ray.get([writer.finish_run.remote(m["run_id"], s.get("status", "done"), s, None, sink.sent())
             for m, sink, s in zip(members, sinks, summaries)])
    return summaries
