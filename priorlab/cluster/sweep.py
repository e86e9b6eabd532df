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

from priorlab import vocab
from priorlab.analysis import claims
from priorlab.analysis.schema import disk_full
from priorlab.analysis.store import Store, StoreError, is_db_url, store_exists
from priorlab.cluster import config as sweep_config
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.cluster import inputs as input_files
from priorlab.cluster import search
from priorlab.cluster.interrupt import CtrlC
from priorlab.cluster.items import WorkItem, from_tune
from priorlab.cluster.progress import ProgressCallback
from priorlab.cluster.terminal import printable
from priorlab.cluster.runtime import connect, plugin_modules
from priorlab.cluster.trial import run_shard, run_trial
from priorlab.cluster.pack_trial import run_pack_trial
from priorlab.cluster.tables import best_table
from priorlab.cluster.work import decide, name_reuse_error  # noqa: F401 (name_reuse_error: tests import it here)
from priorlab.cluster.writer import TrialDeathCallback, start_writer


# Exit statuses of `priorlab sweep`.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def _item(config: dict[str, Any]) -> WorkItem:
    """The work item of a Tune trial's config (`_fit` puts it under its key)."""
    return from_tune(config.get("trial") or config.get("pack") or config["shard"])


def _trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """Each trial asks for its own group's resources (set by the config expansion)."""
    return tune.PlacementGroupFactory([_item(config).resources])


def check_resources(groups: list[tuple[str, dict[str, float]]], nodes: list[dict[str, float]],
                    autoscaling: bool) -> tuple[str | None, str | None]:
    """(error, note) for trial requests no alive node can hold. A trial's placement group is one
    bundle, so its whole request must fit on a single node; a cluster that autoscales may still
    add such a node, so there it is a note and the sweep waits."""
    totals: dict[str, float] = {}
    for n in nodes:
        for k, v in n.items():
            totals[k] = totals.get(k, 0.0) + v
    for name, request in groups:
        if any(all(n.get(k, 0.0) >= v for k, v in request.items()) for n in nodes):
            continue
        largest = {k: max((n.get(k, 0.0) for n in nodes), default=0.0) for k in request}
        ask = ", ".join(f"{k} {v:g}" for k, v in request.items())
        has = ", ".join(f"{k} {v:g}" for k, v in largest.items())
        total = ", ".join(f"{k} {totals.get(k, 0.0):g}" for k in request)
        what = (f"group {name!r} asks for {ask} per trial, but no node has that (largest node: {has}; "
                f"cluster total: {total}; a trial runs on one node)")
        if autoscaling:
            return None, f"note: {what}; the cluster autoscales, so the sweep waits for a node that fits"
        return f"resources: {what}; lower `resources:` in the config or add a node that fits", None
    return None, None


def _autoscaling() -> bool:
    """True when the cluster can add nodes: `ray up` leaves its bootstrap config on the head
    (where the sweep driver runs); PRIORLAB_AUTOSCALING=1/0 says so explicitly."""
    flag = os.environ.get("PRIORLAB_AUTOSCALING")
    if flag is not None:
        return flag.strip().lower() not in ("", "0", "false", "no")
    return Path("~/ray_bootstrap_config.yaml").expanduser().exists()


def _cluster_check(cfg) -> tuple[str | None, str | None]:
    groups = [(g.name or g.kind or cfg.kind, sweep_config.ray_resources(g.resources or cfg.resources))
              for g in (cfg.groups or [sweep_config.Group(name=cfg.kind)])]
    nodes = [{k: float(v) for k, v in n.get("Resources", {}).items()} for n in ray.nodes() if n.get("Alive")]
    return check_resources(groups, nodes, autoscaling=_autoscaling())


def run_sweep(
    config_path: str,
    store_dir: str = "results",
    address: str | None = None,
    force: bool = False,
    max_concurrent: int | None = None,
    num_cpus: int | None = None,
    echo: Callable[[str], None] = print,
    extend: bool = False,
    artifacts: str | None = None,
    only: list[str] | None = None,
) -> int:
    """Run one sweep to the end; returns the exit status (see EXIT_*).

    `extend`: the store may already hold this sweep name with another config; add to it.
    `only`: rerun just these run ids (or unique prefixes) of the sweep, e.g. after `priorlab check`.
    What runs is decided by `work.decide`, which `--plan` prints; with nothing to run, Ray is
    never started.
    One Ctrl-C in any phase stops it (cluster/interrupt.py): exit 130, rerun to resume.
    Every message goes through `printable`: names, parameters and errors from the config or
    the store never reach the terminal with their control characters.
    """
    shown = echo
    echo = lambda message: shown(printable(message, keep_lines=True))  # noqa: E731
    with CtrlC() as ctrl_c:
        try:
            return _run_sweep(config_path, store_dir, address, force, max_concurrent, num_cpus, echo, extend,
                              ctrl_c, artifacts, only)
        except Exception as e:
            if not disk_full(e):
                raise
            echo(f"store error: the disk holding {store_dir} is full ({disk_full(e)}); free some space and "
                 "run the same command again: finished runs are kept, the others resume")
            return EXIT_CONFIG


def _run_sweep(config_path, store_dir, address, force, max_concurrent, num_cpus, echo, extend, ctrl_c: CtrlC,
               artifacts: str | None = None, only: list[str] | None = None) -> int:
    store_dir = str(store_dir) if is_db_url(str(store_dir)) else str(Path(store_dir).resolve())
    try:
        if is_db_url(store_dir):  # a fresh database gets its schema (and --artifacts is checked) now
            Store(store_dir, artifacts=artifacts).close()
        work = decide(config_path, store_dir, force=force, extend=extend, only=only, artifacts=artifacts)
    except StoreError as e:
        echo(f"store error: {e}")
        return EXIT_CONFIG
    except (ConfigError, OSError, ValueError) as e:
        echo(f"config error: {e}")
        return EXIT_CONFIG
    cfg, text, trials, todo, done, files = work.cfg, work.text, work.trials, work.todo, work.done, work.files
    if work.nothing_to_run:
        return _nothing_to_run(work, store_dir, artifacts, echo)
    echo(connect(address, num_cpus=num_cpus, py_modules=plugin_modules(trials + search.probe_trials(cfg))))
    error, note = _cluster_check(cfg)
    if error:
        echo(f"config error: {error}")
        return EXIT_CONFIG
    if note:
        echo(note)
    try:
        shipped = input_files.ship(files)  # into the object store: trials on any node read them
    except ValueError as e:
        echo(f"config error: {e}")
        return EXIT_CONFIG
    owner = claims.new_owner()
    writer = start_writer(store_dir, artifacts, owner=owner)
    try:
        ctrl_c.arm()  # from here a Ctrl-C stops the sweep and keeps what finished
        ray.get(writer.upsert_sweep.remote(cfg.name, text, socket.gethostname()))
        ray.get(writer.register_runs.remote(cfg.name, trials))

        store = Store(store_dir, readonly=True, artifacts=artifacts)  # the writer owns all writes
        echo(f"sweep {cfg.name}: {len(trials)} runs, {len(done)} already done, {len(todo)} to run -> {store_dir}")

        status = EXIT_OK
        shards = work.shards(store_dir, artifacts)
        if shards:
            echo(f"sweep {cfg.name}: scoring {len(shards)} shards first")
            status = _fit(cfg, run_shard, "shard", shards, writer, shipped, max_concurrent, echo, f"{cfg.name} shards",
                          store_dir=store_dir, ctrl_c=ctrl_c)
        stored = None if force else store  # optuna counts (and learns from) stored runs unless --force
        if todo and status == EXIT_OK and cfg.pack > 1:  # issue 11: same-shaped DIP runs fit as packs
            packs = work.items()
            echo(f"sweep {cfg.name}: {len(todo)} runs packed into {len(packs)} trials (pack: {cfg.pack})")
            status = _fit(cfg, run_pack_trial, "pack", packs, writer, shipped, max_concurrent, echo, f"{cfg.name} trials",
                          store_dir=store_dir, ctrl_c=ctrl_c)
        elif (todo or work.optuna_left) and status == EXIT_OK:  # optuna: trials come from the searcher
            status = _fit(cfg, run_trial, "trial", work.items(), writer, shipped, max_concurrent, echo, cfg.name,
                          store=stored, store_dir=store_dir, ctrl_c=ctrl_c)

        counts = store.counts(cfg.name)
        failed = counts.get(vocab.ERROR, 0)  # diverged and pruned runs are results (vocab.RESULTS), not failures
        statuses = store.runs(sweep=cfg.name).set_index("run_id")["status"]
        todo_ids = {t["run_id"] for t in todo}
        unfinished = [r for r, s in statuses.items() if s not in vocab.FINAL and (r in todo_ids or s == "running")]
        if unfinished:
            ray.get(writer.mark_unfinished.remote(unfinished, "interrupted"))
            # Still `running` now: another live sweep holds the claim (only this sweep's are marked).
            elsewhere = {r for r, s in store.run_status(unfinished).items() if s == "running"}
            if elsewhere:
                echo(f"sweep {cfg.name}: {len(elsewhere)} runs are being run by another sweep on this store; "
                     "their results land in the store when it finishes them")
            unfinished = [r for r in unfinished if r not in elsewhere]
        if unfinished:
            status = EXIT_INTERRUPTED
        if ctrl_c.requested.is_set():  # even when every run happened to finish as the user pressed it
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
        echo(f"open the dashboard: priorlab dashboard --store {store.where}"
             + (f" --artifacts {artifacts}" if artifacts and is_db_url(store_dir) else ""))
        return status
    finally:
        # The writer holds the store's write connection: a driver that runs several sweeps
        # on one Ray instance (a notebook, a long-lived cluster) must not keep one per sweep.
        ray.kill(writer)
        claims.end_owner(owner)  # what it still claims (the store went away) is free for the next sweep


def _nothing_to_run(work, store_dir: str, artifacts: str | None, echo: Callable[[str], None]) -> int:
    """Every run is final in the store: record the sweep (name, config, links) directly, with
    no Ray and no writer actor (nothing of this sweep runs), and print its results."""
    cfg = work.cfg
    store = Store(store_dir, artifacts=artifacts)
    try:
        store.upsert_sweep(cfg.name, work.text, socket.gethostname())
        store.register_runs(cfg.name, work.trials)
        failed = store.counts(cfg.name).get(vocab.ERROR, 0)
        store.set_sweep_status(cfg.name, "error" if failed else "done")
    finally:
        store.close()
    n = len(work.trials)
    echo(f"sweep {cfg.name}: {n} runs, {len(work.done) or n} already done, 0 to run: Ray not started "
         f"(--force reruns all, --only RUN_ID reruns one) -> {store_dir}")
    store = Store(store_dir, readonly=True, artifacts=artifacts)
    echo(f"sweep {cfg.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(store.counts(cfg.name).items()) if v))
    table = best_table(store, cfg.name)
    if table:
        echo("best settings:\n" + table)
    echo(f"open the dashboard: priorlab dashboard --store {store.where}"
         + (f" --artifacts {artifacts}" if artifacts and is_db_url(store_dir) else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _trial_name(t) -> str:
    item = _item(t.config)
    return item.name or f"{item.sweep}-{t.trial_id}"  # optuna: no run id before the draw


class _NoTuneResumeHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)": a priorlab sweep resumes by
    running the same command again (the store knows what is done), which the sweep says."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


_TUNE_HINT_FILTER = _NoTuneResumeHint()

# Tune's bookkeeping (experiment state, trial folders) goes to a scratch folder inside the
# store, never the system temp folder: a driver killed with SIGKILL cannot clean up after
# itself, so the next sweep on the store removes scratch folders whose process is gone.
SCRATCH = ".tune-scratch"


def _scratch_dir(store_dir: str) -> str:
    # A server store has no folder here: Tune's bookkeeping goes to this machine's temp folder.
    base = Path(tempfile.gettempdir()) / "priorlab" if is_db_url(store_dir) else Path(store_dir)
    root = base / SCRATCH
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        pid = old.name.split("-")[1] if old.name.count("-") >= 2 else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"tune-{os.getpid()}-", dir=root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _fit(cfg, fn, key, items, writer, shipped, max_concurrent, echo, desc, store=None, store_dir: str = "",
         ctrl_c: CtrlC | None = None) -> int:
    """One Tune run over `items`, each passed to `fn` as `config[key]`; the config's search
    and scheduler (cluster/search.py) decide the space and pruning. `shipped`: the input
    files in the object store (cluster/inputs.py). Tune's scratch folder goes inside `store_dir`."""
    # Tune's own console output (experiment boxes, trial tables) would bury our progress line.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ctrl_c = ctrl_c or CtrlC()
    if ctrl_c.requested.is_set():  # Ctrl-C between two phases: the next one does not start
        return EXIT_INTERRUPTED
    # Tune warns about every trial it stopped on Ctrl-C; the store already says which.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    logging.getLogger("ray.tune.tune").addFilter(_TUNE_HINT_FILTER)
    plan = search.tune_plan(cfg, fn, key, items, writer, store)
    for note in plan.notes:
        echo(f"sweep {cfg.name}: {note}")
    trainable = tune.with_resources(tune.with_parameters(plan.fn, writer=writer, inputs=shipped), _trial_resources)
    # A pack trial runs several runs, a shard several trials: the bar counts (and rates) what it ticks.
    progress = ProgressCallback(total=plan.total, desc=printable(desc), unit={"pack": "trial", "trial": "run"}.get(key, key))
    scratch = _scratch_dir(store_dir)
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
            stop=ctrl_c.stopper(),  # one Ctrl-C stops every trial (cluster/interrupt.py)
            # A store server that went away stops the sweep as Ctrl-C would; the first store
            # call after the fit then fails with the one line naming which server.
            callbacks=[progress, TrialDeathCallback(writer, on_store_away=ctrl_c.requested.set)],
            verbose=0,
            progress_reporter=None,
        ),
    )
    try:
        tuner.fit()
    except KeyboardInterrupt:  # a second Ctrl-C: no waiting for Tune to stop its trials
        ctrl_c.requested.set()
    finally:
        progress.close()
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            os.rmdir(Path(scratch).parent)  # the store keeps no empty scratch folder
        except OSError:
            pass  # another sweep on this store is running
        sys.stderr.flush()
    # The writer commits in groups (cluster/group_commit.py): what the trials sent is in the
    # store only now. A store that went away raises here, in its one line.
    ray.get(writer.flush.remote())
    if ctrl_c.requested.is_set():
        echo("\nstopping: marking unfinished runs interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK
