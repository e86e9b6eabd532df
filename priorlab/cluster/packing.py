"""Grouping a sweep's DIP runs into packs, and `priorlab sweep CONFIG --plan`.

With `pack: K` in a sweep config, the DIP runs still to do are grouped by network shape
(`priorlab.tasks.dip.pack.shape_key`: arch, depth, width, head, input depth, size, iterations,
logging steps, device settings) and by the resources their group asks for; each group is cut
into packs of at most K runs, of near-equal size (10 runs with K = 8 make 5 + 5, not 8 + 2, so
no pack is the straggler). A pack is one Tune trial (`priorlab.cluster.pack_trial`) that asks for the
resources the config gives one trial: `gpu: 1` gives each pack a whole GPU, `gpu: 0.25` puts
four packs on one GPU. Runs of other kinds (baselines, StyleGAN) and DIP runs with a plug-in
architecture (`module:builder`, which may not batch under vmap) stay trials of their own.
Every member keeps its run id, so a resumed sweep packs only the runs not done yet.

`--plan` (`priorlab.cluster.plan`) prints these packs; `capacity` and `at_once` here say how
many trials run at once on the cluster the sweep would use (joined only when `--address` or
RAY_ADDRESS names one; otherwise this machine's CPUs and GPUs).
"""

from __future__ import annotations

import hashlib
import math
import os
from priorlab.cluster.items import PackItem, RunSpec, TrialItem
from priorlab.tasks.dip.pack import shape_key
from priorlab.tasks.plugins import is_plugin

PACKABLE = ("dip",)


def pack_id(run_ids: list[str]) -> str:
    """A pack's name: a hash of its members' run ids (the same members, the same name)."""
    return "pack-" + hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:10]


def pack_trials(runs: list[RunSpec], k: int) -> list[TrialItem | PackItem]:
    """The Tune items of a packed sweep: packs of same-shaped DIP runs, and a trial of its own
    for each run that cannot pack, in config order."""
    groups: dict[tuple, list[RunSpec]] = {}
    slots: list[tuple | RunSpec] = []  # a group's key keeps its packs' place in config order
    for r in runs:
        # Plug-in architectures run alone: nothing promises that a user's network batches under vmap.
        if r.kind in PACKABLE and k > 1 and not is_plugin(r.params.get("arch", "")):
            key = (r.kind, shape_key(r.params), tuple(sorted(r.resources.items())))
            if key not in groups:
                groups[key] = []
                slots.append(key)
            groups[key].append(r)
        else:
            slots.append(r)
    out: list[TrialItem | PackItem] = []
    for slot in slots:
        if isinstance(slot, RunSpec):
            out.append(TrialItem(slot))
            continue
        group = groups[slot]
        n_packs = math.ceil(len(group) / k)
        size = math.ceil(len(group) / n_packs)
        for i in range(0, len(group), size):
            members = tuple(group[i : i + size])
            out.append(PackItem(pack_id([m.run_id for m in members]), members, members[0].resources))
    return out


# ---- the plan ----------------------------------------------------------------------------


def _fmt_resources(res: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in res.items()) or "nothing"


def capacity(address: str | None, num_cpus: int | None) -> tuple[str, list[dict[str, float]]]:
    """(where the numbers come from, one resource dict per node) of the cluster a sweep would use."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        import ray

        from priorlab.cluster.runtime import connect

        connect(address)
        nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
        return f"the Ray cluster at {address} ({len(nodes)} nodes, joined to read its resources)", nodes
    cpus = num_cpus or os.cpu_count() or 1
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # no usable torch build: count no GPUs
        gpus = 0
    where = f"this machine, as embedded Ray would start (no --address or RAY_ADDRESS given): {cpus} CPUs, {gpus} GPUs"
    return where, [{"CPU": cpus, "GPU": gpus}]


def at_once(nodes: list[dict[str, float]], request: dict[str, float]) -> int:
    """How many trials asking `request` fit side by side on `nodes` (each on one node)."""
    total = 0
    for node in nodes:
        fits = [math.floor(node.get(r, 0) / need + 1e-9) for r, need in request.items() if need > 0]
        total += min(fits) if fits else 0
    return total
