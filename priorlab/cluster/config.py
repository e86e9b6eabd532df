"""Sweep configs: the models a YAML file is validated against, and reading one.

A sweep names a task kind, fixed parameters, grid axes and resources. `groups` (optional)
are several grids whose union makes the sweep, each may switch the kind (DIP beside the
classical baselines) and inherits the top-level settings its kind accepts. Every trial is
validated by its task's own parameter model before anything starts, so a typo or an
impossible combination is an error that names the field, the value and what is allowed.

Reading is `safe_yaml.py`, the search space `space.py`, expansion into runs `expand.py`, the
one-line messages `errors.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from priorlab.cluster.errors import ConfigError, format_validation
from priorlab.cluster.safe_yaml import parse_text, read_yaml
from priorlab.cluster.space import Scheduler, Search, check_grid
from priorlab.tasks.registry import KINDS


MIN_SHARE = 1e-4


class Resources(BaseModel):
    # inf/nan would pass `gt=0` and ask Ray for a slot no node has: refused here.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Ray counts resources in steps of 1/10000: a smaller share rounds to nothing (or to a
    # request Ray refuses), so it is refused here.
    cpu: float = Field(1.0, ge=MIN_SHARE, le=1e6, description="CPUs per trial; also the trial's torch threads")
    gpu: float = Field(0.0, ge=0, le=1e6, description="GPUs per trial; fractions such as 0.25 pack trials")
    custom: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per trial")

    @field_validator("gpu")
    @classmethod
    def _gpu_share(cls, gpu: float) -> float:
        if 0 < gpu < MIN_SHARE:
            raise ValueError(f"must be 0 or at least {MIN_SHARE} (Ray's smallest share); got {gpu}")
        return gpu

    @field_validator("custom")
    @classmethod
    def _custom_amounts(cls, custom: dict[str, float]) -> dict[str, float]:
        for name, amount in custom.items():
            if not MIN_SHARE <= amount <= 1e6:  # a negative amount: no node ever fits, the sweep waits forever
                raise ValueError(f"custom.{name} = {amount}: allowed {MIN_SHARE}..1e6 per trial")
        return custom


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    kind: str | None = None
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any] = Field(default_factory=dict)  # a list is an axis, a mapping a range (cluster/space.py)
    resources: Resources | None = None  # this group's trials only (baselines need no GPU)

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, Any]) -> dict[str, Any]:
        return check_grid(grid)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    description: str = ""
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any] = Field(default_factory=dict)  # a list is an axis, a mapping a range (cluster/space.py)
    groups: list[Group] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(0, ge=0, le=1000, description="Tune FailureConfig.max_failures per trial")
    max_concurrent: int | None = Field(None, ge=1, le=1_000_000)
    search: Search = Field(default_factory=Search)  # grid | random | optuna
    scheduler: Scheduler | None = None  # asha: prune weak trials early
    # issue 11: fit up to K same-shaped DIP runs together in one trial (cluster/packing.py)
    pack: int = Field(
        1, ge=1, le=256, description="DIP runs of one network shape fitted together per trial (1: no packing)"
    )
    # The config file's folder: relative input file names resolve against it (set by `load`;
    # None for a config built in code: the current folder).
    _folder: Path | None = PrivateAttr(None)

    @property
    def folder(self) -> Path | None:
        return self._folder

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(sorted(KINDS))}")
        return kind

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, Any]) -> dict[str, Any]:
        return check_grid(grid)  # non-empty lists, or valid ranges

    @model_validator(mode="after")
    def _pack_needs_the_grid(self) -> "SweepConfig":
        # A pack is one Tune trial of K runs: a searcher or a scheduler could not see or prune a member.
        if self.pack > 1 and (self.search.type != "grid" or self.scheduler is not None):
            raise ValueError(
                f"pack: {self.pack} works with the grid search and no scheduler; drop pack, or search and scheduler"
            )
        return self

    @model_validator(mode="after")
    def _group_kinds(self) -> "SweepConfig":
        for i, g in enumerate(self.groups):
            if g.kind is not None and g.kind not in KINDS:
                raise ValueError(f"groups[{i}].kind: unknown kind {g.kind!r}; allowed: {', '.join(sorted(KINDS))}")
        return self


def ray_resources(res: Resources) -> dict[str, float]:
    """A trial's request in Ray's resource names."""
    out = {"CPU": res.cpu, "GPU": res.gpu, **res.custom}
    return {k: v for k, v in out.items() if v}


# Settings that say how a sweep runs, not which runs it holds: changing them under a stored
# sweep name does not make another sweep (a larger search budget adds samples to the same one).
OPERATIONAL = ("description", "resources", "retries", "max_concurrent", "pack")  # pack: same runs, same ids
OPERATIONAL_SEARCH = ("num_samples",)


def meaning(text: str) -> dict[str, Any] | None:
    """What a config text means (its validated fields less the operational ones), or None when
    it no longer validates; texts that differ only in comments, layout, key order, resources,
    retries or search budget mean the same."""
    try:
        data = parse_text(text)
        return None if data is None else _without_operational(SweepConfig(**data).model_dump())
    except Exception:  # an old text that is not valid now is simply not the same config
        return None


def _without_operational(dumped: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in dumped.items() if k not in OPERATIONAL}
    out["groups"] = [{k: v for k, v in g.items() if k != "resources"} for g in out.get("groups", [])]
    if isinstance(out.get("search"), dict):
        out["search"] = {k: v for k, v in out["search"].items() if k not in OPERATIONAL_SEARCH}
    return out


def same_sweep(cfg: SweepConfig, text: str) -> bool:
    """True when the stored config `text` means the same sweep as `cfg`."""
    return meaning(text) == _without_operational(cfg.model_dump())


def load(path: str | Path) -> tuple[SweepConfig, str]:
    """Read and validate a sweep YAML; returns the config and its text (stored with the sweep)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: no such file {str(path)!r}")
    data, text = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, kind, fixed, grid, resources")
    cfg = parse(data, where=f"{path}: ")
    cfg._folder = path.parent.absolute()
    return cfg, text


def parse(data: dict[str, Any], where: str = "") -> SweepConfig:
    try:
        return SweepConfig(**data)
    except ValidationError as e:
        raise ConfigError(format_validation(e, where, model=SweepConfig)) from None
