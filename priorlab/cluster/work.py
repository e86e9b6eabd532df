"""What a sweep runs: one decision for `priorlab sweep` and `priorlab sweep --plan`.

`decide(config_path, store_dir, ...)` loads and expands the config, refuses a changed config
under a name the store already holds (unless `--extend`), skips the runs the store holds as
final (done and pruned; `--force` reruns them), narrows to `--only RUN_ID,...` when given, and
says which StyleGAN shard trials are still unscored and how many trials an Optuna search still
has to draw. The sweep runs exactly this; the plan prints exactly this, so the two cannot
disagree. Nothing here starts or joins Ray: a sweep with nothing to run never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from priorlab.cluster import config as sweep_config
from priorlab.cluster import packing, search
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.cluster.items import PackItem, RunSpec, ShardItem, TrialItem



@dataclass
class Work:
    cfg: Any  # the validated SweepConfig
    text: str  # the config file's text (stored with the sweep)
    trials: list[dict[str, Any]]  # every expanded trial of the config (Optuna: none, its searcher draws them)
    done: set[str]  # run ids the store holds as final (skipped)
    todo: list[dict[str, Any]]  # the trials to run, `force` set where a final run is rerun
    optuna_left: int = 0  # trials an Optuna search still draws
    files: list = field(default_factory=list)  # the input files the trials name (cluster/inputs.py), checked
    only: list[str] = field(default_factory=list)  # the run ids --only asked for

    @property
    def nothing_to_run(self) -> bool:
        return not self.todo and not self.optuna_left

    def items(self) -> list[TrialItem | PackItem]:
        """The Tune items of the trials to run: packs of same-shaped DIP runs with `pack: K`."""
        k = self.cfg.pack or 1
        runs = [RunSpec.from_dict(t) for t in self.todo]
        return packing.pack_trials(runs, k) if k > 1 else [TrialItem(r) for r in runs]

    def shards(self, store_dir: str | Path, artifacts: str | None = None) -> list[ShardItem]:
        """The shard trials of sharded runs not scored yet (a resumed sweep keeps its shards,
        which the store keeps among its files)."""
        from priorlab.analysis.store import Store, store_exists
        from priorlab.tasks.registry import KINDS

        store = Store(store_dir, readonly=True, artifacts=artifacts) if store_exists(store_dir) else None
        out = []
        for run in map(RunSpec.from_dict, self.todo):
            kind = KINDS[run.kind]
            n = kind.sharding.count(run.task_params()) if kind.sharding else 1
            if n > 1:
                have = set(store.files.shards_present(run.run_id)) if store is not None else set()
                out += [ShardItem(run, i, n) for i in range(n) if i not in have]
        return out


def name_reuse_error(store_dir: str | Path, cfg, text: str, extend: bool, artifacts: str | None = None) -> str | None:
    """A message when the store holds `cfg.name` with a config of another meaning (and the user
    did not ask to extend that sweep), else None. Two sweeps are never mixed silently.

    Configs are compared by what they mean (the validated config), so an edited comment,
    reordered keys, other resources or a larger search budget is the same sweep; every text
    a sweep ran with stays in `sweep_configs`. A sweep that never started a run (it failed
    before, e.g. on a value now fixed) holds nothing its name could mix, so its name is free.
    """
    from priorlab.analysis.store import Store, store_exists

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


def parse_only(text: str | None) -> list[str]:
    """`--only a1b2,c3d4` (run ids or unique prefixes, comma- or space-separated)."""
    if not text:
        return []
    return list(dict.fromkeys(p for p in text.replace(" ", ",").split(",") if p.strip()))


def _select_only(cfg, trials: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    if cfg.search.type == "optuna":
        raise ConfigError(f"--only {','.join(wanted)}: an Optuna sweep draws its runs as it goes, so it cannot rerun "
                          "chosen ones (allowed: grid and random sweeps)")
    out = []
    for w in wanted:
        hits = [t for t in trials if t["run_id"].startswith(w)]
        if len(hits) != 1:
            some = ", ".join(t["run_id"][:8] for t in trials[:5]) + (", ..." if len(trials) > 5 else "")
            why = "matches no run" if not hits else f"matches {len(hits)} runs"
            raise ConfigError(f"--only {w!r} {why} of sweep {cfg.name!r} (allowed: one of its {len(trials)} run ids "
                              f"or a unique prefix: {some})")
        out.append(hits[0])
    return list({t["run_id"]: t for t in out}.values())


def decide(config_path: str | Path, store_dir: str | Path, *, force: bool = False, extend: bool = False,
           only: list[str] | None = None, artifacts: str | None = None) -> Work:
    """What `priorlab sweep` runs for this config and store. Raises ConfigError (a config that
    cannot run, also a changed config under a stored name), OSError (an unreadable file) and
    StoreError (an unreadable store), ValueError (an input file that cannot be used)."""
    from priorlab.analysis.store import Store, store_exists
    from priorlab.cluster import inputs as input_files

    cfg, text = sweep_config.load(config_path)
    trials = expand(cfg)  # checks every input file once
    files = input_files.gather([*trials, *search.probe_trials(cfg)], cfg.folder)  # (already checked)
    reuse = name_reuse_error(store_dir, cfg, text, extend, artifacts)
    if reuse:
        raise ConfigError(reuse)
    exists = store_exists(store_dir)
    if not force and exists:
        moved = input_files.changed(Store(store_dir, readonly=True, artifacts=artifacts), trials, files)
        if moved:  # an input file changed under the same name: the stored runs no longer match it
            raise ConfigError(moved)
    wanted = list(only or [])
    picked = _select_only(cfg, trials, wanted) if wanted else trials
    store = Store(store_dir, readonly=True, artifacts=artifacts) if exists else None
    # --only reruns exactly the runs it names, whatever the store holds (a repaired artifact's run is done).
    skip = wanted or force or store is None
    done = set() if skip else search.final_ids(store, [t["run_id"] for t in trials])
    todo = [t for t in picked if t["run_id"] not in done]
    if force or wanted:  # the trial may then reset a run another sweep finished
        todo = [{**t, "force": True} for t in todo]
    left = 0 if wanted else search.remaining(cfg, None if force else store)
    return Work(cfg=cfg, text=text, trials=trials, done=done, todo=todo, optuna_left=left, only=wanted, files=files)
