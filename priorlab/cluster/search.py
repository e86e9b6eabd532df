"""Adaptive sweeps at run time, with Ray Tune's own machinery: random and Optuna search, ASHA pruning.

The space itself (ranges, `search:` and `scheduler:` and their checks) is `cluster/space.py`.

How each search runs (and resumes):

- `grid`: every combination, as always; ranges are not allowed.
- `random`: Tune's variant generator (the one behind its BasicVariantGenerator) draws the
  ranges with a seeded random state on the driver, before anything runs. As in Tune,
  `num_samples` repeats the list axes' grid: N samples x the grid's combinations. The trials
  are then ordinary concrete trials: validated by the task's model, given their run ids,
  registered as pending. The same seed draws the same list again, so a resumed sweep skips
  the stored runs like a grid sweep does.
- `optuna`: Tune's OptunaSearch (TPE, seeded) suggests each trial as the sweep goes; list axes
  become categorical dimensions (Optuna has no grid). A trial builds its parameters from the
  fixed ones and the suggestion, validates them and registers its run (same run id as the
  same parameters anywhere). On resume the searcher is seeded with the stored runs of this
  sweep that lie in the current space: done ones through OptunaSearch's `points_to_evaluate`
  + `evaluated_rewards`, pruned ones as pruned Optuna trials; they count toward
  `num_samples`, so only the rest is run; the sampler's seed is offset by their number so
  the resumed study does not redraw the first session's points. (Tune's own searcher checkpoint would need Tune's
  scratch folder to outlive the sweep; the store is the record instead.)

Pruning: Tune's ASHAScheduler decides on each per-step report (`time_attr="step"`, the
task's logging step). When it says STOP, the driver tells the store writer to mark the run
`pruned` if it is still running (`mark_unfinished`, an atomic check-and-set in the writer
actor): the trial's rows already logged stay, the trial itself just ends at its next report
(Tune ends a function trainable's session there). Deciding on the driver, from the
scheduler's own decision, keeps a Ctrl-C (which stops trials the same way) from looking like
a prune, and a trial that finishes while the stop is in flight stays `done` (its
`finish_run` wins over the check-and-set either way round). Rungs lie strictly below
`max_t` (default: the trials' largest `iterations`) and trials that pass the last rung run
to their own end (`stop_last_trials=False`): a run that completes is done, not pruned.
A pruned run is final: never an error, not rerun on resume; so is a diverged one.

A killed driver's Optuna trials leave runs `running` (or `interrupted`, after Ctrl-C) that
Optuna never heard the end of: a resumed sweep enqueues their points first, so they are rerun
(the claim of a dead driver is reclaimable) and count toward `num_samples` like any trial.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from priorlab import vocab
from priorlab.cluster.config import ray_resources
from priorlab.cluster.expand import run_id
from priorlab.cluster.items import DrawItem, RunSpec, ShardItem, TrialItem, WorkItem, from_tune, to_tune
from priorlab.cluster.space import Range, in_space, max_iterations, plain
from priorlab.tasks.registry import KINDS


# ---------------------------------------------------------------- Optuna: trials built at run time

def optuna_space(cfg) -> dict[str, Any]:
    """The Tune space Optuna searches: ranges as they are, list axes as categorical choices."""
    from ray import tune

    return {a: (v.domain() if isinstance(v, Range) else tune.choice(v)) for a, v in cfg.grid.items()}


def probe_trials(cfg) -> list[dict[str, Any]]:
    """Optuna: one concrete trial per listed value (ranges at a corner), for what must be known
    before any trial exists (the plug-in code to ship to the nodes). Other searches: none."""
    if cfg.search.type != "optuna":
        return []
    base = _space_base(cfg)
    first = {a: (v[0] if isinstance(v, list) else v.corners()[0]) for a, v in cfg.grid.items()}
    out = []
    for a, v in cfg.grid.items():
        for value in (v if isinstance(v, list) else v.corners()):
            try:
                out.append(concrete_trial(base, {**first, a: value}))
            except (ValidationError, ValueError):
                pass  # check_ranges reports these
    return out


def concrete_trial(space_base: DrawItem, point: dict[str, Any]) -> dict[str, Any]:
    """The trial record `{run_id, kind, params, resources}` of one suggested point."""
    kind = space_base.kind
    params = KINDS[kind].params(**{**space_base.fixed, **point}).model_dump(mode="json")
    return {"run_id": run_id(kind, params), "kind": kind, "params": params, "resources": space_base.resources}


def run_point(config: dict[str, Any], writer=None, inputs: dict[str, dict] | None = None) -> None:
    """The Tune trainable of an Optuna trial: build the run from the suggestion, register it
    with the sweep, then run it like any trial."""
    import ray

    from priorlab.cluster.inputs import materialize
    from priorlab.cluster.trial import run_one

    materialize(inputs)  # the suggestion's parameters may name a shipped file
    draw: DrawItem = from_tune(config["trial"])
    trial = concrete_trial(draw, config["point"])
    ray.get(writer.register_runs.remote(draw.sweep, [trial]))
    run_one(TrialItem(RunSpec.from_dict(trial)), writer, inputs)


def run_id_of(config: dict[str, Any]) -> str | None:
    """The run id of a Tune trial's config: given for grid/random trials, built from the
    suggestion for Optuna ones; None when the suggestion is not a valid run."""
    raw = config.get("trial") or config.get("shard")
    if not raw:
        return None
    item = from_tune(raw)
    if isinstance(item, (TrialItem, ShardItem)):
        return item.run.run_id
    try:
        return concrete_trial(item, config["point"])["run_id"]
    except (KeyError, ValidationError, ValueError, TypeError):
        return None


def _optuna_searcher(cfg, store, space: dict[str, Any]):
    from ray.tune.search.optuna import OptunaSearch

    class StoreSeededOptuna(OptunaSearch):
        """OptunaSearch that (1) skips per-step results without its metric (a summary key
        arrives only with a trial's final report; Optuna's pruner is off under Tune anyway),
        (2) tells Optuna a trial Tune stopped before its final report was pruned, and
        (3) adds the stored pruned runs as pruned trials next to the done ones."""

        def __init__(self, *args, pruned_points=(), retry_points=(), **kwargs):
            self._pruned_points = list(pruned_points)
            self._retry_points = list(retry_points)
            super().__init__(*args, **kwargs)

        def _setup_study(self, mode):
            super()._setup_study(mode)
            for point in self._pruned_points:
                self.add_evaluated_point(point, None, pruned=True)
            for point in self._retry_points:  # unfinished runs of a killed session: suggested first
                self._ot_study.enqueue_trial(point)

        def on_trial_result(self, trial_id, result):
            if self.metric in result:
                super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            final = bool(result) and "status" in result  # run_trial's last report carries the summary
            super().on_trial_complete(trial_id, result if final else None, error=error)

    done, rewards, pruned = stored_points(cfg, store)
    retry = stored_points(cfg, store, vocab.UNFINISHED)[2]
    # The sampler's seed moves on with what is stored: the same seed would draw the first
    # session's startup points again, i.e. rerun stored runs.
    return StoreSeededOptuna(
        metric=cfg.search.metric, mode=cfg.search.mode,
        seed=cfg.search.seed + len(done) + len(pruned) + len(retry),  # retried points were drawn too
        points_to_evaluate=done or None, evaluated_rewards=rewards or None, pruned_points=pruned,
        retry_points=retry,
    ), len(done) + len(pruned)


def _space_base(cfg) -> DrawItem:
    return DrawItem(kind=cfg.kind, sweep=cfg.name, fixed=dict(cfg.fixed), resources=ray_resources(cfg.resources))


def stored_points(cfg, store, statuses=vocab.SPENT) -> tuple[list[dict], list[float], list[dict]]:
    """This sweep's stored runs of `statuses` that lie in the current Optuna space: (done
    points, their metric values, other points: pruned, or with no metric value), as flattened
    Tune points (`point/<axis>`)."""
    if store is None:
        return [], [], []
    runs = store.runs(sweep=cfg.name, status=list(statuses))
    base = _space_base(cfg)
    done, rewards, pruned = [], [], []
    for _, r in runs.iterrows():
        point = {a: plain(r.get(a)) for a in cfg.grid}
        try:
            same = concrete_trial(base, point)["run_id"] == r["run_id"]
        except (ValidationError, TypeError, ValueError):
            same = False
        if not same or not in_space(cfg.grid, point):
            continue
        flat = {f"point/{a}": v for a, v in point.items()}
        value = r.get(cfg.search.metric)
        unscored = value is None or (isinstance(value, float) and math.isnan(value))
        if r["status"] in (vocab.PRUNED, *vocab.UNFINISHED) or unscored:
            pruned.append(flat)
        else:
            done.append(flat)
            rewards.append(float(value))
    return done, rewards, pruned


# ---------------------------------------------------------------- ASHA

def _asha(cfg, items: list[WorkItem], writer):
    from ray.tune.schedulers import ASHAScheduler

    sched = cfg.scheduler

    class PruningASHA(ASHAScheduler):
        """Tune's ASHA; each STOP it decides marks the trial's run `pruned` in the store."""

        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == self.STOP:
                # Only a running run becomes pruned: one that finished meanwhile stays done.
                run_id = run_id_of(trial.config)
                if run_id:
                    writer.mark_unfinished.remote([run_id], "pruned")
            return decision

    max_t = sched.max_t or max_iterations(cfg, [r.to_dict() for item in items for r in item.runs])
    return PruningASHA(
        time_attr="step", metric=sched.metric, mode=sched.mode,
        max_t=max_t - 1,  # rungs strictly below the budget: a run that completes is done
        grace_period=sched.grace_period, reduction_factor=sched.reduction_factor,
        stop_last_trials=False,
    )


# ---------------------------------------------------------------- the hook for cluster/sweep.py::_fit

@dataclass
class TunePlan:
    fn: Callable
    param_space: dict[str, Any]
    total: int
    num_samples: int = 1
    search_alg: Any = None
    scheduler: Any = None
    notes: list[str] = field(default_factory=list)


def tune_plan(cfg, fn: Callable, key: str, items: list[WorkItem], writer, store=None) -> TunePlan:
    """What `_fit` hands Tune: the trainable, the space, the search algorithm and scheduler."""
    from ray import tune

    if key != "trial":  # shards (StyleGAN scoring) are plain work: no search, no pruning
        return TunePlan(fn=fn, param_space={key: tune.grid_search([to_tune(i) for i in items])}, total=len(items))
    if cfg.search.type != "grid" or cfg.scheduler is not None:
        # Per-step reports carry the step's metrics and the final report the summary, so no
        # single key is in every result; Tune's strict check would stop the sweep.
        os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    scheduler = _asha(cfg, items, writer) if cfg.scheduler is not None else None
    if cfg.search.type == "optuna":
        searcher, stored = _optuna_searcher(cfg, store, optuna_space(cfg))
        left = max(0, cfg.search.num_samples - stored)
        return TunePlan(
            fn=run_point, param_space={"trial": to_tune(_space_base(cfg)), "point": optuna_space(cfg)}, total=left,
            num_samples=left, search_alg=searcher, scheduler=scheduler,
            notes=[f"optuna: {stored} of {cfg.search.num_samples} samples stored, {left} to run"],
        )
    return TunePlan(fn=fn, param_space={key: tune.grid_search([to_tune(i) for i in items])}, total=len(items),
                    scheduler=scheduler)


def remaining(cfg, store) -> int:
    """Trials an Optuna search still has to run (0 for the other searches: their list is known);
    `store=None` (--force) counts nothing as stored."""
    if cfg.search.type != "optuna":
        return 0
    if store is None:
        return cfg.search.num_samples
    done, _, pruned = stored_points(cfg, store)
    return max(0, cfg.search.num_samples - len(done) - len(pruned))


def final_ids(store, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` that a resumed sweep skips: done and pruned."""
    ids = set(run_ids)
    if not ids:
        return set()
    runs = store.runs(status=list(vocab.RESULTS))
    return set(runs["run_id"]) & ids if not runs.empty else set()
