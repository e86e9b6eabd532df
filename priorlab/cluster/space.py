"""The search space of a sweep config: ranges, the search and scheduler settings, and their checks.

    search: {type: random, num_samples: 8, seed: 0}        # or {type: grid} (the default)
    search: {type: optuna, num_samples: 8, metric: best_psnr, mode: max}
    scheduler: {type: asha, metric: psnr, mode: max, grace_period: 10, reduction_factor: 2}
    grid:
      lr: {loguniform: [1.0e-4, 1.0e-1]}    # a range is sampled (also uniform, randint, choice)
      arch: [skip, seed-double]               # a list stays a grid axis

Everything here is decided on the driver before a trial starts: which values are allowed,
which points a grid or random search holds (`points`), whether a scheduler can prune at all.
How Tune then runs the search is `cluster/search.py`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import typing
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from priorlab.cluster.errors import ConfigError, format_validation

DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
INT64 = 2**63  # every integer a run stores is a 64-bit one (SQLite, torch)
# Random draws are expanded into runs on the driver before anything starts, and Optuna asks
# for each: a bound that keeps the expansion in memory and the sweep finite.
MAX_SAMPLES = 100_000


class Range(BaseModel):
    """A sampled grid value: exactly one of `loguniform: [lo, hi]`, `uniform: [lo, hi]`,
    `randint: [lo, hi]` (hi exclusive, as in Tune) or `choice: [a, b, ...]`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    loguniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _one_distribution(self) -> "Range":
        given = [d for d in DISTRIBUTIONS if getattr(self, d) is not None]
        if len(given) != 1:
            raise ValueError(f"a range takes exactly one of {', '.join(DISTRIBUTIONS)}; got {given or 'none'}")
        if self.choice is not None and not self.choice:
            raise ValueError("choice needs at least one value")
        bounds = self.loguniform or self.uniform or self.randint
        if self.randint is not None and not all(-INT64 <= b < INT64 for b in self.randint):
            raise ValueError(f"randint: bounds must lie within ±2**63 (64-bit integers); got {list(self.randint)}")
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"{self.dist}: lower bound {bounds[0]} must be below the upper bound {bounds[1]}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError(f"loguniform: bounds must be > 0; got {self.loguniform[0]}")
        return self

    @property
    def dist(self) -> str:
        return next(d for d in DISTRIBUTIONS if getattr(self, d) is not None)

    def domain(self):
        """The Tune search-space domain of this range."""
        from ray import tune

        return getattr(tune, self.dist)(self.choice) if self.dist == "choice" else getattr(tune, self.dist)(*getattr(self, self.dist))

    def corners(self) -> list[Any]:
        """Values that bound what the range can draw: validated up front."""
        if self.choice is not None:
            return list(self.choice)
        lo, hi = getattr(self, self.dist)
        if self.randint is not None:
            return [lo, hi - 1]
        mid = math.sqrt(lo * hi) if self.loguniform is not None else (lo + hi) / 2
        return [lo, mid, hi]


class Search(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["grid", "random", "optuna"] = "grid"
    num_samples: int | None = Field(None, ge=1, le=MAX_SAMPLES,
                                    description="random: samples (x the list axes' grid); optuna: trials")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the random draws / Optuna's sampler")
    metric: str = Field("best_psnr", description="optuna: the result to optimise (a summary key)")
    mode: Literal["max", "min"] = "max"

    @model_validator(mode="after")
    def _samples_given(self) -> "Search":
        if self.type != "grid" and self.num_samples is None:
            raise ValueError(f"search type {self.type!r} needs num_samples (how many trials to draw)")
        if self.type == "grid" and self.num_samples is not None:
            raise ValueError("num_samples needs search type random or optuna (a grid runs every combination)")
        return self


class Scheduler(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["asha"]
    # psnr_ema (PSNR of the EMA of the outputs) is smoother than psnr, so early rungs rank
    # trials closer to their final order (tests/benchmarks/bench_asha.py).
    metric: str = Field("psnr_ema", description="a per-step metric the trials log (DIP: psnr_ema, psnr, ssim, loss)")
    mode: Literal["max", "min"] = "max"
    grace_period: int = Field(ge=1, lt=INT64, description="steps a trial runs before it can be pruned")
    reduction_factor: float = Field(2.0, gt=1, le=1000)
    max_t: int | None = Field(None, ge=2, lt=INT64,
                              description="rungs lie below it; default: the trials' largest iterations")


def check_grid(grid: dict[str, Any]) -> dict[str, Any]:
    """Grid values: a non-empty list (a grid axis) or a range mapping (sampled)."""
    out: dict[str, Any] = {}
    for axis, values in grid.items():
        if isinstance(values, Range):
            out[axis] = values
        elif isinstance(values, dict):
            unknown = [k for k in values if k not in DISTRIBUTIONS]
            if unknown:
                near = difflib.get_close_matches(str(unknown[0]), DISTRIBUTIONS, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"grid axis {axis!r}: unknown range {unknown[0]!r}{hint}; "
                                 f"allowed: {', '.join(DISTRIBUTIONS)}")
            try:
                out[axis] = Range(**values)
            except ValidationError as e:
                msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" if x["loc"] else x["msg"]
                                for x in e.errors()).replace("Value error, ", "")
                raise ValueError(f"grid axis {axis!r}: {msg}; e.g. {{loguniform: [1.0e-4, 1.0e-1]}}") from None
        elif isinstance(values, list):
            if not values:
                raise ValueError(f"grid axis {axis!r} has no values")
            out[axis] = values
        else:
            raise ValueError(f"grid axis {axis!r}: expected a list of values or a range "
                             f"({', '.join(DISTRIBUTIONS)}); got {values!r}")
    return out


def _is_int_field(model, name: str) -> bool:
    f = model.model_fields.get(name)
    if f is None:
        return False
    args = [a for a in typing.get_args(f.annotation) if a is not type(None)] or [f.annotation]
    return all(a is int for a in args)


def check_ranges(model, fixed: dict[str, Any], grid: dict[str, Any], search: Search, where: str) -> None:
    """Ranges checked before anything runs: the search type allows them, a float range does
    not feed an integer field, and each range's corners pass the task's model."""
    ranges = {a: v for a, v in grid.items() if isinstance(v, Range)}
    if not ranges:
        return
    if search.type == "grid":
        axis = next(iter(ranges))
        raise ConfigError(f"{where}grid.{axis}: a range is sampled, which needs search type random or optuna "
                          f"(search: {{type: random, num_samples: N}}); a list is a grid axis")
    base = {**fixed, **{a: v[0] for a, v in grid.items() if isinstance(v, list)}}
    for axis, r in ranges.items():
        if r.dist in ("uniform", "loguniform") and _is_int_field(model, axis):
            raise ConfigError(f"{where}grid.{axis}: {r.dist} draws floats but {axis} takes integers; use randint or choice")
        for value in r.corners():
            try:
                model(**{**base, axis: value})
            except ValidationError as e:
                raise ConfigError(format_validation(e, f"{where}grid.{axis} ({r.dist} bound {value!r}): ")) from None


def points(grid: dict[str, Any], search: Search, group_index: int = 0) -> list[dict[str, Any]]:
    """The concrete grid points of one group: every combination for a grid search, the
    seeded random draws (x the list axes) for a random search, none for Optuna (its trials
    are suggested while the sweep runs)."""
    if search.type == "optuna":
        return []
    if search.type == "grid":
        axes = list(grid)
        return [dict(zip(axes, combo)) for combo in itertools.product(*(grid[a] for a in axes))]
    from ray import tune
    from ray.tune.search.variant_generator import generate_variants

    spec = {a: (v.domain() if isinstance(v, Range) else tune.grid_search(v)) for a, v in grid.items()}
    rng = np.random.default_rng([search.seed, group_index])  # a group's draws do not depend on other groups
    out = []
    for _ in range(search.num_samples):
        for _, variant in generate_variants(spec, random_state=rng):
            out.append({a: plain(variant[a]) for a in grid})
    return out


def plain(value: Any) -> Any:
    """numpy scalars from Tune's samplers as plain Python (JSON, run ids, pydantic)."""
    return value.item() if isinstance(value, np.generic) else value


def check_optuna(cfg, where: str = "") -> None:
    if cfg.search.type != "optuna":
        return
    if cfg.groups:
        raise ConfigError(f"{where}search: type optuna searches one space; groups are not supported (use random or grid)")
    for axis, v in cfg.grid.items():
        bad = [x for x in (v if isinstance(v, list) else v.choice or []) if not isinstance(x, (str, int, float, bool, type(None)))]
        if bad:
            raise ConfigError(f"{where}grid.{axis}: Optuna chooses among plain values (str, int, float, bool); got {bad[0]!r}")


def in_space(grid: dict[str, Any], point: dict[str, Any]) -> bool:
    for a, v in grid.items():
        x = point[a]
        if isinstance(v, list) or v.choice is not None:
            if x not in (v if isinstance(v, list) else v.choice):
                return False
        else:
            lo, hi = getattr(v, v.dist)
            if not (lo <= x <= hi):
                return False
    return True


def max_iterations(cfg, items: list[dict[str, Any]]) -> int:
    """The largest `iterations` of the sweep's trials (Optuna: the fixed value or the range's top)."""
    found = [t["params"]["iterations"] for t in items if "iterations" in t["params"]]
    v = cfg.grid.get("iterations", cfg.fixed.get("iterations"))
    if isinstance(v, list):
        found += v
    elif isinstance(v, Range):
        found += [max(v.corners())]
    elif isinstance(v, int):
        found.append(v)
    if not found:
        from priorlab.tasks.registry import KINDS

        f = KINDS[cfg.kind].params.model_fields.get("iterations")
        if f is not None and isinstance(f.default, int):
            found.append(f.default)
    return int(max(found)) if found else 0


def check_scheduler(cfg, items: list[dict[str, Any]], where: str = "") -> None:
    sched = cfg.scheduler
    if sched is None:
        return
    max_t = sched.max_t or max_iterations(cfg, items)
    if not max_t:
        raise ConfigError(f"{where}scheduler.max_t: needed, the trials have no iterations to prune along")
    if sched.grace_period >= max_t:
        raise ConfigError(f"{where}scheduler.grace_period = {sched.grace_period}: must be below max_t ({max_t}), "
                          "or no trial can ever be pruned")


def check_metrics(cfg, items: list[dict[str, Any]], where: str = "") -> None:
    """An ASHA or Optuna `metric` must be one the sweep's runs report: a name nobody reports is
    accepted by Tune and then silently never prunes (ASHA) or never learns (Optuna). Checked
    for DIP runs, whose names `tasks/dip/record.reported_names` lists."""
    from priorlab.tasks.dip.record import reported_names
    from priorlab.tasks.registry import KINDS

    params = [t["params"] for t in items if t["kind"] == "dip"]
    if not items and cfg.search.type == "optuna" and cfg.kind == "dip":  # trials come later: one corner
        first = {a: (v[0] if isinstance(v, list) else v.corners()[0]) for a, v in cfg.grid.items()}
        try:
            params = [KINDS["dip"].params(**{**cfg.fixed, **first}).model_dump(mode="json")]
        except (ValidationError, ValueError):
            return  # check_ranges reports it
    if not params or len(params) != len(items or params):
        return  # other kinds: their names are not listed here
    names = [reported_names(p) for p in {_names_key(p): p for p in params}.values()]
    step = sorted({n for s, _ in names for n in s})
    summary = sorted({n for _, s in names for n in s})
    if cfg.scheduler is not None and cfg.scheduler.metric not in step:
        raise ConfigError(f"{where}scheduler.metric = {cfg.scheduler.metric!r}: no run of this sweep reports it "
                          f"at its logging steps, so nothing would ever be pruned (allowed: {', '.join(step)})")
    if cfg.search.type == "optuna" and cfg.search.metric not in summary:
        raise ConfigError(f"{where}search.metric = {cfg.search.metric!r}: no run of this sweep reports it in "
                          f"its summary, so Optuna would never learn (allowed: {', '.join(summary)})")


def _names_key(params: dict[str, Any]) -> tuple:
    """What decides a DIP run's reported names, as a hashable key."""
    return (params.get("task"), params.get("mask") is not None, tuple(params.get("detectors") or ()))
