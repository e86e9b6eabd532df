"""`priorlab sweep`: expand a config, skip what the store already holds, run the rest with Tune."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import ray
from ray import tune

from analysis.store import Store
from cluster import config as sweep_config
from cluster import search
from cluster.progress import ProgressCallback
from cluster.runtime import connect, plugin_modules
from cluster.trial import run_shard, run_trial
from cluster.writer import TrialDeathCallback, start_writer
from tasks.images import BUNDLED

FINAL = ("done", "error", "diverged", "pruned")  # pruned: a scheduler's early stop, a result

# Exit statuses of `priorlab sweep`.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def _user_images(trials: list[dict[str, Any]]) -> dict[str, bytes]:
    """Bytes of every user image file the trials name, read once here on the driver."""
    names = {t["params"].get("image") for t in trials}
    return {n: Path(n).expanduser().read_bytes() for n in names if isinstance(n, str) and n not in BUNDLED}


def _trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """Each trial asks for its own group's resources (set by the config expansion)."""
    item = config.get("trial") or config["shard"]
    return tune.PlacementGroupFactory([item["resources"]])


def best_table(store: Store, sweep: str, metric: str = "best_psnr", top: int = 5) -> str:
    """The best settings of a sweep as a small text table, for the end of a run."""
    runs = store.runs(sweep=sweep, status="done")
    if runs.empty or metric not in runs.columns:
        return ""
    params = [c for c in runs.attrs.get("param_columns", []) if runs[c].astype(str).nunique() > 1]
    best = runs.sort_values(metric, ascending=False).head(top)
    return best[["kind", *params, metric]].to_string(index=False)


def run_sweep(
    config_path: str,
    store_dir: str = "results",
    address: str | None = None,
    force: bool = False,
    max_concurrent: int | None = None,
    num_cpus: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run one sweep to the end; returns the exit status (see EXIT_*)."""
    try:
        cfg, text = sweep_config.load(config_path)
        trials = sweep_config.expand(cfg)
        images = _user_images(trials)
    except (sweep_config.ConfigError, OSError) as e:
        echo(f"config error: {e}")
        return EXIT_CONFIG

    store_dir = str(Path(store_dir).resolve())
    echo(connect(address, num_cpus=num_cpus, py_modules=plugin_modules(trials + search.probe_trials(cfg))))
    writer = start_writer(store_dir)
    ray.get(writer.upsert_sweep.remote(cfg.name, text, socket.gethostname()))
    ray.get(writer.register_runs.remote(cfg.name, trials))

    store = Store(store_dir, readonly=True)  # the writer owns all writes
    ids = [t["run_id"] for t in trials]
    done = set() if force else search.final_ids(store, ids)  # done and pruned runs are not rerun
    todo = [t for t in trials if t["run_id"] not in done]
    if force:  # the trial may then reset a run another sweep finished meanwhile
        todo = [{**t, "force": True} for t in todo]
    echo(f"sweep {cfg.name}: {len(trials)} runs, {len(done)} already done, {len(todo)} to run -> {store_dir}")

    status = EXIT_OK
    shards = _pending_shards(todo, writer)
    if shards:
        echo(f"sweep {cfg.name}: scoring {len(shards)} shards first")
        status = _fit(cfg, run_shard, "shard", shards, writer, {}, max_concurrent, echo, f"{cfg.name} shards")
    stored = None if force else store  # optuna counts (and learns from) stored runs unless --force
    if (todo or search.remaining(cfg, stored)) and status == EXIT_OK:  # optuna: trials come from the searcher
        status = _fit(cfg, run_trial, "trial", todo, writer, images, max_concurrent, echo, cfg.name, store=stored)

    counts = store.counts(cfg.name)
    failed = sum(counts.get(s, 0) for s in ("error", "diverged"))
    statuses = store.runs(sweep=cfg.name).set_index("run_id")["status"]
    todo_ids = {t["run_id"] for t in todo}
    unfinished = [r for r, s in statuses.items() if s not in FINAL and (r in todo_ids or s == "running")]
    if unfinished:
        ray.get(writer.mark_unfinished.remote(unfinished, "interrupted"))
        status = EXIT_INTERRUPTED
    sweep_status = "interrupted" if unfinished else ("error" if failed else "done")
    ray.get(writer.set_sweep_status.remote(cfg.name, sweep_status))

    echo(f"sweep {cfg.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(store.counts(cfg.name).items()) if v))
    table = best_table(store, cfg.name)
    if table:
        echo("best settings:\n" + table)
    if unfinished:
        echo(f"interrupted: {len(unfinished)} runs unfinished; run the same command again to resume")
    elif failed:
        errors = store.runs(sweep=cfg.name, status="error")
        for _, r in errors.head(3).iterrows():
            last = (r.get("error") or "").strip().splitlines()[-1:] or [""]
            echo(f"  error in {r['run_id']}: {last[0]}")
        status = EXIT_FAILED
    echo(f"open the dashboard: priorlab dashboard --store {store_dir}")
    return status


def _pending_shards(todo: list[dict[str, Any]], writer) -> list[dict[str, Any]]:
    """The shard trials of sharded runs that are not scored yet (a resumed sweep keeps its shards)."""
    from tasks.registry import KINDS

    shards = []
    for t in todo:
        kind = KINDS[t["kind"]]
        n = kind.sharding.count(kind.params(**t["params"])) if kind.sharding else 1
        if n > 1:
            have = set(ray.get(writer.shards_present.remote(t["run_id"])))
            shards += [{**t, "index": i, "n": n, "name": f"{t['run_id']}-s{i}"} for i in range(n) if i not in have]
    return shards


def _trial_name(t) -> str:
    c = t.config.get("trial") or t.config["shard"]
    return c.get("name") or c.get("run_id") or f"{c.get('sweep', 'trial')}-{t.trial_id}"  # optuna: no id yet


def _fit(cfg, fn, key, items, writer, images, max_concurrent, echo, desc, store=None) -> int:
    """One Tune run over `items`, each passed to `fn` as `config[key]`; the config's search
    and scheduler (cluster/search.py) decide the space and pruning."""
    # Tune's own console output (experiment boxes, trial tables) would bury our progress line.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune warns about every trial it stopped on Ctrl-C; the store already says which.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    extra = {"images": images} if key == "trial" else {}
    plan = search.tune_plan(cfg, fn, key, items, writer, store)
    for note in plan.notes:
        echo(f"sweep {cfg.name}: {note}")
    trainable = tune.with_resources(tune.with_parameters(plan.fn, writer=writer, **extra), _trial_resources)
    progress = ProgressCallback(total=plan.total, desc=desc)
    scratch = tempfile.mkdtemp(prefix="priorlab-tune-")
    tuner = tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            num_samples=plan.num_samples,
            max_concurrent_trials=max_concurrent or cfg.max_concurrent,
            reuse_actors=True,  # one worker process per slot: torch is imported once, not per trial
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"{cfg.name}-{key}",
            # Tune's own bookkeeping only; results travel to the store through the writer.
            storage_path=scratch,
            failure_config=tune.FailureConfig(max_failures=cfg.retries),
            callbacks=[progress, TrialDeathCallback(writer)],
            verbose=0,
            progress_reporter=None,
        ),
    )
    try:
        tuner.fit()
    except KeyboardInterrupt:
        echo("\nstopping: marking unfinished runs interrupted")
        return EXIT_INTERRUPTED
    finally:
        progress.close()
        shutil.rmtree(scratch, ignore_errors=True)
        sys.stderr.flush()
    return EXIT_OK
