"""One Tune trial of a packed sweep: K DIP runs fitted together, each recorded as its own run.

The trial claims, fits and finishes its members through `trial.claim_run_finish`, as a
single-run trial does its run (skipping a member another sweep finished, waiting for one
another live sweep is running); the fit is `priorlab.tasks.dip.pack.run_pack`, through one
writer-forwarding sink per member (the same rows and images an unpacked trial sends). Each
member is finished with its own status and summary (plus `pack_id`, `pack_size` and, on a
GPU, `gpu_ids`); a diverged member is finished `diverged` while the others go on. Items of a
packed sweep that are not packs (baselines, StyleGAN runs) run as ordinary trials.
"""

from __future__ import annotations

import os
from typing import Any

from ray import tune

from priorlab import vocab
from priorlab.cluster.items import PackItem, TrialItem, from_tune
from priorlab.cluster.trial import SKIPPED, RaySink, begin, claim_run_finish, run_one, tune_scalars
from priorlab.tasks.dip.pack import run_pack


class MemberSink(RaySink):
    """A member's rows and images go to the writer under its own run id; Tune hears from the
    pack once at the end (K members reporting each step would look like K trials' results)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.send([(step, k, float(v)) for k, v in values.items()])


def run_pack_trial(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of a packed sweep. `config["pack"]` is an item of `packing.pack_trials`."""
    item: PackItem | TrialItem = from_tune(config["pack"])
    if isinstance(item, TrialItem):  # a run that does not pack: an ordinary trial
        return run_one(item, writer, inputs)
    begin(item, inputs)

    def fit(params: list[Any], sinks: list[RaySink]) -> list[dict[str, Any]]:
        return run_pack(params, sinks, pack_id=item.pack_id)

    summaries = claim_run_finish(writer, item.runs, inputs, fit, sink_type=MemberSink)
    if not summaries:
        tune.report({"pack_id": item.pack_id, "status": SKIPPED, "pid": os.getpid()})
        return
    statuses = [s.get("status", vocab.DONE) for s in summaries]
    best = [s["best_psnr"] for s in summaries if s.get("best_psnr") is not None]
    # The speed of the last pack fitted (members another sweep held are fitted after the rest).
    last = summaries[-1]["pack_size"]
    extra = {k: v for k, v in tune_scalars(summaries[-last]).items() if k in ("iters_per_s", "wall_s", "device")}
    tune.report({
        "pack_id": item.pack_id, "pack_size": len(summaries), "pid": os.getpid(),
        "done": statuses.count(vocab.DONE), "diverged": statuses.count(vocab.DIVERGED),
        **({"best_psnr": max(best)} if best else {}), **extra,
    })
