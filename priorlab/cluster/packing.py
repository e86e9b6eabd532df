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

The plan prints, without running anything: the Tune trials, the runs in each, what each
asks for, and how many trials run at once on the cluster the sweep would use (joined only
when `--address` or RAY_ADDRESS names one; otherwise this machine's CPUs and GPUs).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Callable

from priorlab.tasks.dip.pack import SHAPE_FIELDS, shape_key
from priorlab.tasks.plugins import is_plugin

PACKABLE = ("dip",)


def pack_id(run_ids: list[str]) -> str:
    """A pack's name: a hash of its members' run ids (the same members, the same name)."""
    return "pack-" + hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:10]


def pack_trials(trials: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The Tune items of a packed sweep: packs `{"pack_id", "name", "kind", "members",
    "resources"}` of same-shaped DIP runs, and the runs that cannot pack as they are."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    items: list[dict[str, Any]] = []
    for t in trials:
        # Plug-in architectures run alone: nothing promises that a user's network batches under vmap.
        if t["kind"] in PACKABLE and k > 1 and not is_plugin(t["params"].get("arch", "")):
            key = (t["kind"], shape_key(t["params"]), tuple(sorted(t["resources"].items())))
            if key not in groups:
                groups[key] = []
                items.append({"group": key})  # a placeholder keeps the packs in config order
            groups[key].append(t)
        else:
            items.append(t)
    out: list[dict[str, Any]] = []
    for item in items:
        if "group" not in item:
            out.append(item)
            continue
        runs = groups[item["group"]]
        n_packs = math.ceil(len(runs) / k)
        size = math.ceil(len(runs) / n_packs)
        for i in range(0, len(runs), size):
            members = runs[i : i + size]
            pid = pack_id([m["run_id"] for m in members])
            out.append({
                "pack_id": pid, "name": pid, "kind": members[0]["kind"],
                "members": members, "resources": members[0]["resources"],
            })
    return out


# ---- the plan ----------------------------------------------------------------------------


def _fmt_resources(res: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in res.items()) or "nothing"


def _describe(item: dict[str, Any]) -> tuple[str, str]:
    """(what the runs share, what differs between them) for one Tune item."""
    members = item.get("members") or [item]
    p0 = members[0]["params"]
    if "members" in item:
        shared = f"{p0['arch']} depth {p0['depth']} width {p0['width']} {p0['size']}px {p0['iterations']} it"
    else:
        keys = [k for k in ("arch", "depth", "width", "method", "task", "size") if k in p0]
        shared = " ".join(f"{k}={p0[k]}" for k in keys) or ""
    varying = sorted({k for m in members for k, v in m["params"].items() if v != p0.get(k) and k not in SHAPE_FIELDS})
    return shared, ("varies: " + ", ".join(varying)) if varying else ""


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


def plan(
    config_path: str,
    store_dir: str = "results",
    artifacts: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    max_concurrent: int | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """`priorlab sweep CONFIG --plan`: print what the sweep would run, and exit (0, or 2 for a config error)."""
    from priorlab.cluster import config as sweep_config
    from priorlab.cluster.errors import ConfigError
    from priorlab.cluster import inputs as input_files
    from priorlab.cluster import search
    from priorlab.cluster.expand import expand
    from priorlab.cluster.terminal import printable

    shown = echo
    echo = lambda message: shown(printable(message, keep_lines=True))  # noqa: E731
    try:
        cfg, _ = sweep_config.load(config_path)
        trials = expand(cfg)  # checks every input file once
        files = input_files.gather([*trials, *search.probe_trials(cfg)], cfg.folder)
    except (ConfigError, OSError, ValueError) as e:
        echo(f"config error: {e}")
        return 2
    done: set[str] = set()
    from priorlab.analysis.store import Store, store_exists

    if not force and store_exists(store_dir):  # a plan only reads (any schema version will do)
        store = Store(store_dir, readonly=True, any_version=True, artifacts=artifacts)
        moved = input_files.changed(store, trials, files)  # the sweep would refuse to resume: say so now
        if moved:
            echo(f"config error: {moved}")
            return 2
        done = store.done_ids([t["run_id"] for t in trials])
    todo = [t for t in trials if t["run_id"] not in done]
    k = getattr(cfg, "pack", 1) or 1
    items = pack_trials(todo, k)
    packs = [i for i in items if "members" in i]
    echo(
        f"plan for sweep {cfg.name}: {len(trials)} runs, {len(done)} already done in {store_dir}, "
        f"{len(todo)} to run as {len(items)} Tune trials"
        + (f" ({len(packs)} packs of up to {k} runs)" if k > 1 else " (no packing; add `pack: K` to pack DIP runs)")
    )
    width = max([len(i.get("name") or i["run_id"]) for i in items] + [5])
    echo(f"  {'trial':<{width}}  {'kind':<13} {'runs':>4}  {'asks for':<16} runs share / differ in")
    for item in items:
        shared, varying = _describe(item)
        name = item.get("name") or item["run_id"]
        n = len(item.get("members", [item]))
        asks = _fmt_resources(item["resources"])
        echo(f"  {name:<{width}}  {item['kind']:<13} {n:>4}  {asks:<16} {shared}  {varying}".rstrip())

    if files:
        total = sum(f.size for f in files)
        echo(f"input files: {len(files)}, {input_files.describe_size(total)} in all, checked here and shipped to the "
             "trials through Ray's object store (relative paths are read from the config file's folder)")
        for line in input_files.describe(files):
            echo(line)
    where, nodes = capacity(address, num_cpus)
    echo(f"cluster: {where}")
    limit = max_concurrent or cfg.max_concurrent
    requests: dict[tuple, int] = {}
    for item in items:
        key = tuple(sorted(item["resources"].items()))
        requests[key] = requests.get(key, 0) + 1
    for key, count in requests.items():
        request = dict(key)
        fit = at_once(nodes, request)
        n = min(fit, count, limit) if limit else min(fit, count)
        why = f" (max_concurrent {limit})" if limit and limit < min(fit, count) else ""
        if fit == 0:
            echo(f"  trials asking {_fmt_resources(request)}: none fit on any node; they would wait forever")
        else:
            echo(f"  trials asking {_fmt_resources(request)}: {n} of {count} at once{why} ({fit} fit side by side)")
    return 0
