"""`priorlab sweep`: expand a config, skip what the store already holds, run the rest with Tune."""

from __future__ import annotations

import errno
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
from priorlab.analysis.store import Store, StoreError, is_db_url, store_exists
from priorlab.cluster import config as sweep_config
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.cluster import inputs as input_files
from priorlab.cluster import search
from priorlab.cluster.interrupt import CtrlC
from priorlab.cluster.progress import ProgressCallback
from priorlab.cluster.terminal import printable
from priorlab.cluster.runtime import connect, plugin_modules
from priorlab.cluster.trial import run_shard, run_trial
from priorlab.cluster import packing
from priorlab.cluster.pack_trial import run_pack_trial
from priorlab.cluster.writer import TrialDeathCallback, start_writer


# Exit statuses of `priorlab sweep`.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def _trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """Each trial asks for its own group's resources (set by the config expansion)."""
    item = config.get("trial") or config.get("pack") or config["shard"]
    return tune.PlacementGroupFactory([item["resources"]])


# What the end-of-sweep summary shows per StyleGAN kind (see priorlab.vocab): summary keys by
# name, and per-space keys (`vocab.space_key`) with one column per latent space / path present.
STYLEGAN_SUMMARY = {
    vocab.SG_DIRECTION: ((), ("val_accuracy",)),  # SVM accuracy of the attribute per latent space
    vocab.SG_INTERPOLATE: ((), ("flip_step_mean",)),  # the frame where the label flips, per path
    vocab.SG_SAMPLE: (("n",), ("diversity", "prob_mean")),
    vocab.SG_TRAVERSE: ((), ("prob_delta", "ssim_at_max")),  # attribute change, identity at +-alpha
}


def _summary_columns(runs, kind: str) -> list[str]:
    plain, per_space = STYLEGAN_SUMMARY.get(kind, ((), ()))
    cols = [c for c in plain if c in runs.columns]
    for key in per_space:
        cols += [c for c in runs.columns if (k := vocab.parse_space_key(c)) and k[1] == key]
    return [c for c in dict.fromkeys(cols) if runs[c].notna().any()]


def _varying(runs, columns: list[str]) -> list[str]:
    """Parameters that take more than one value within these runs (all-empty ones dropped)."""
    return [c for c in columns if runs[c].notna().any() and runs[c].astype(str).nunique() > 1]


def best_table(store: Store, sweep: str, metric: str = "best_psnr", top: int = 5) -> str:
    """The best settings of a sweep, for the end of a run: one small table per kind and task,
    showing only the parameters that vary within it; StyleGAN kinds show their own results."""
    runs = store.runs(sweep=sweep, status="done")
    if runs.empty:
        return ""
    params = runs.attrs.get("param_columns", [])
    parts = []
    for kind, of_kind in runs.groupby("kind", sort=True):
        tasks = of_kind.groupby("task", dropna=False) if "task" in of_kind.columns and of_kind["task"].notna().any() \
            else [(None, of_kind)]
        for task, group in tasks:
            title = kind if task is None or task != task else f"{kind} {task}"
            varying = _varying(group, params)
            if metric in group.columns and group[metric].notna().any():
                best = group.sort_values(metric, ascending=False).head(top)
                shown = [*varying, metric, *(["input_psnr"] if "input_psnr" in group.columns else [])]
                head = f"{title}: best {len(best)} of {len(group)} by {metric}"
            elif kind in STYLEGAN_SUMMARY:
                best = group.head(top)
                shown = [*varying, *_summary_columns(group, kind)]
                head = f"{title}: {len(group)} run{'s' if len(group) != 1 else ''}"
            else:
                continue
            if not shown:
                continue
            table = best[shown].to_string(index=False, float_format=lambda x: f"{x:.4g}")
            parts.append(head + "\n" + "\n".join("  " + line for line in table.splitlines()))
    return "\n".join(parts)


def name_reuse_error(store_dir: str | Path, cfg, text: str, extend: bool, artifacts: str | None = None) -> str | None:
    """A message when the store holds `cfg.name` with a config of another meaning (and the user
    did not ask to extend that sweep), else None. Two sweeps are never mixed silently.

    Configs are compared by what they mean (the validated config), so an edited comment,
    reordered keys, other resources or a larger search budget is the same sweep; every text
    a sweep ran with stays in `sweep_configs`. A sweep that never started a run (it failed
    before, e.g. on a value now fixed) holds nothing its name could mix, so its name is free.
    """
    if extend or not store_exists(store_dir):
        return None
    store = Store(store_dir, readonly=True, artifacts=artifacts)
    stored = store.sweep_configs(cfg.name)
    if not stored or text in stored:
        return None
    counts = store.counts(cfg.name)
    if sum(counts.values()) == counts["pending"]:  # it failed before running anything: nothing to mix
        return None
    if any(sweep_config.same_sweep(cfg, old) for old in stored):
        return None
    return (f"sweep {cfg.name!r} is already in {store_dir} with a different config; give this one a new "
            f"`name:`, or pass --extend to add its runs to {cfg.name!r} (its config history keeps both)")


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
) -> int:
    """Run one sweep to the end; returns the exit status (see EXIT_*).

    `extend`: the store may already hold this sweep name with another config; add to it.
    One Ctrl-C in any phase stops it (cluster/interrupt.py): exit 130, rerun to resume.
    Every message goes through `printable`: names, parameters and errors from the config or
    the store never reach the terminal with their control characters.
    """
    shown = echo
    echo = lambda message: shown(printable(message, keep_lines=True))  # noqa: E731
    with CtrlC() as ctrl_c:
        try:
            return _run_sweep(config_path, store_dir, address, force, max_concurrent, num_cpus, echo, extend,
                              ctrl_c, artifacts)
        except Exception as e:
            if not disk_full(e):
                raise
            echo(f"store error: the disk holding {store_dir} is full ({disk_full(e)}); free some space and "
                 "run the same command again: finished runs are kept, the others resume")
            return EXIT_CONFIG


_FULL = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def disk_full(e: BaseException) -> str | None:
    """What says the disk is full, anywhere in `e`'s chain (Tune wraps its own writes' OSError
    in a TuneError, Ray a writer actor's in a RayTaskError), else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e.strerror or _FULL[0]
        said = next((f for f in _FULL if f in str(e)), None)
        if said:
            return said
        e = e.__cause__ or e.__context__
    return None


def _run_sweep(config_path, store_dir, address, force, max_concurrent, num_cpus, echo, extend, ctrl_c: CtrlC,
               artifacts: str | None = None) -> int:
    try:
        cfg, text = sweep_config.load(config_path)
        trials = expand(cfg)  # checks every input file once
        files = input_files.gather([*trials, *search.probe_trials(cfg)], cfg.folder)  # (already checked)
    except (ConfigError, OSError, ValueError) as e:
        echo(f"config error: {e}")
        return EXIT_CONFIG

    store_dir = str(store_dir) if is_db_url(str(store_dir)) else str(Path(store_dir).resolve())
    try:
        if is_db_url(store_dir):  # a fresh database gets its schema (and --artifacts is checked) now
            Store(store_dir, artifacts=artifacts).close()
        reuse = name_reuse_error(store_dir, cfg, text, extend, artifacts)
    except StoreError as e:
        echo(f"store error: {e}")
        return EXIT_CONFIG
    if reuse:
        echo(f"config error: {reuse}")
        return EXIT_CONFIG
    if not force and store_exists(store_dir):
        moved = input_files.changed(Store(store_dir, readonly=True, artifacts=artifacts), trials, files)
        if moved:
            echo(f"config error: {moved}")
            return EXIT_CONFIG
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
    writer = start_writer(store_dir, artifacts, owner=claims.new_owner())
    ctrl_c.arm()  # from here a Ctrl-C stops the sweep and keeps what finished
    ray.get(writer.upsert_sweep.remote(cfg.name, text, socket.gethostname()))
    ray.get(writer.register_runs.remote(cfg.name, trials))

    store = Store(store_dir, readonly=True, artifacts=artifacts)  # the writer owns all writes
    ids = [t["run_id"] for t in trials]
    done = set() if force else search.final_ids(store, ids)  # done, pruned and diverged runs are not rerun
    todo = [t for t in trials if t["run_id"] not in done]
    if force:  # the trial may then reset a run another sweep finished meanwhile
        todo = [{**t, "force": True} for t in todo]
    echo(f"sweep {cfg.name}: {len(trials)} runs, {len(done)} already done, {len(todo)} to run -> {store_dir}")

    status = EXIT_OK
    shards = _pending_shards(todo, writer)
    if shards:
        echo(f"sweep {cfg.name}: scoring {len(shards)} shards first")
        status = _fit(cfg, run_shard, "shard", shards, writer, shipped, max_concurrent, echo, f"{cfg.name} shards",
                      store_dir=store_dir, ctrl_c=ctrl_c)
    stored = None if force else store  # optuna counts (and learns from) stored runs unless --force
    if todo and status == EXIT_OK and cfg.pack > 1:  # issue 11: same-shaped DIP runs fit as packs
        packs = packing.pack_trials(todo, cfg.pack)
        echo(f"sweep {cfg.name}: {len(todo)} runs packed into {len(packs)} trials (pack: {cfg.pack})")
        status = _fit(cfg, run_pack_trial, "pack", packs, writer, shipped, max_concurrent, echo, f"{cfg.name} trials",
                      store_dir=store_dir, ctrl_c=ctrl_c)
    elif (todo or search.remaining(cfg, stored)) and status == EXIT_OK:  # optuna: trials come from the searcher
        status = _fit(cfg, run_trial, "trial", todo, writer, shipped, max_concurrent, echo, cfg.name, store=stored,
                      store_dir=store_dir, ctrl_c=ctrl_c)

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


def _pending_shards(todo: list[dict[str, Any]], writer) -> list[dict[str, Any]]:
    """The shard trials of sharded runs that are not scored yet (a resumed sweep keeps its shards)."""
    from priorlab.tasks.registry import KINDS

    shards = []
    for t in todo:
        kind = KINDS[t["kind"]]
        n = kind.sharding.count(kind.params(**t["params"])) if kind.sharding else 1
        if n > 1:
            have = set(ray.get(writer.shards_present.remote(t["run_id"])))
            shards += [{**t, "index": i, "n": n, "name": f"{t['run_id']}-s{i}"} for i in range(n) if i not in have]
    return shards


def _trial_name(t) -> str:
    c = t.config.get("trial") or t.config.get("pack") or t.config["shard"]
    return c.get("name") or c.get("run_id") or f"{c.get('sweep', 'trial')}-{t.trial_id}"  # optuna: no id yet


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
    progress = ProgressCallback(total=plan.total, desc=printable(desc))
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
    if ctrl_c.requested.is_set():
        echo("\nstopping: marking unfinished runs interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK
