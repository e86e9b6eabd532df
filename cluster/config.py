"""Sweep configs: a YAML file validated at the edge and expanded into trial parameter sets.

A sweep names a task kind, fixed parameters, grid axes and resources. `groups` (optional)
are several grids whose union makes the sweep, each may switch the kind (DIP beside the
classical baselines) and inherits the top-level settings its kind accepts. Every trial is
validated by its task's own parameter model before anything starts, so a typo or an
impossible combination is an error that names the field, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cluster import search
from cluster.search import Scheduler, Search
from tasks.registry import KINDS


class ConfigError(ValueError):
    """A sweep config that cannot run; the message says where and why."""


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(1.0, gt=0, description="CPUs per trial; also the trial's torch threads")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; fractions such as 0.25 pack trials")
    custom: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per trial")


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    kind: str | None = None
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any] = Field(default_factory=dict)  # a list is an axis, a mapping a range (cluster/search.py)
    resources: Resources | None = None  # this group's trials only (baselines need no GPU)

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, Any]) -> dict[str, Any]:
        return search.check_grid(grid)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    description: str = ""
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any] = Field(default_factory=dict)  # a list is an axis, a mapping a range (cluster/search.py)
    groups: list[Group] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(0, ge=0, description="Tune FailureConfig.max_failures per trial")
    max_concurrent: int | None = Field(None, ge=1)
    search: Search = Field(default_factory=Search)  # grid | random | optuna
    scheduler: Scheduler | None = None  # asha: prune weak trials early

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(sorted(KINDS))}")
        return kind

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, Any]) -> dict[str, Any]:
        return search.check_grid(grid)  # non-empty lists, or valid ranges

    @model_validator(mode="after")
    def _group_kinds(self) -> "SweepConfig":
        for i, g in enumerate(self.groups):
            if g.kind is not None and g.kind not in KINDS:
                raise ValueError(f"groups[{i}].kind: unknown kind {g.kind!r}; allowed: {', '.join(sorted(KINDS))}")
        return self


def run_id(kind: str, params: dict[str, Any]) -> str:
    """Deterministic id of one trial: the same kind and parameters always give the same id."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ray_resources(res: Resources) -> dict[str, float]:
    """A trial's request in Ray's resource names."""
    out = {"CPU": res.cpu, "GPU": res.gpu, **res.custom}
    return {k: v for k, v in out.items() if v}


def format_validation(err: ValidationError, where: str = "", as_flags: bool = False) -> str:
    """One line per bad field: where, the field (or its command-line flag), the value, what is allowed."""
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(parameters)"
        if as_flags:
            field = "--" + field.replace("_", "-")
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"{where}{field}{shown}: {e['msg']}")
    return "\n".join(lines)


def _expand_image_axis(values: list[Any]) -> list[Any]:
    """An image value that names a folder expands to the images in it."""
    from tasks.images import expand_images

    out: list[Any] = []
    for v in values:
        out.extend(expand_images(v) if isinstance(v, str) else [v])
    return out


def expand(config: SweepConfig) -> list[dict[str, Any]]:
    """Every trial of the sweep: `[{"run_id", "kind", "params", "resources"}]`, validated and
    de-duplicated; `resources` is what one trial asks Ray for (`{"CPU": 1, "GPU": 0.25, ...}`).

    Axes that a task ignores for a given combination (a region for denoising) are
    normalised away by the task's model, so the duplicates they would create collapse here.
    """
    groups = config.groups or [Group()]
    trials: dict[str, dict[str, Any]] = {}
    for gi, group in enumerate(groups):
        kind = group.kind or config.kind
        model = KINDS[kind].params
        accepted = set(model.model_fields)
        inherited = group.kind is not None and group.kind != config.kind
        # A group of another kind inherits only the shared settings its kind accepts.
        fixed = {k: v for k, v in config.fixed.items() if not inherited or k in accepted}
        grid = {k: v for k, v in config.grid.items() if not inherited or k in accepted}
        # The group's own settings win over inherited ones, fixed or grid alike.
        for k in group.fixed:
            grid.pop(k, None)
        for k in set(group.grid) | set(grid):
            fixed.pop(k, None)
        fixed.update(group.fixed)
        grid.update(group.grid)
        if isinstance(grid.get("image"), list):
            try:
                grid["image"] = _expand_image_axis(grid["image"])
            except ValueError as e:
                raise ConfigError(str(e)) from None
        where = f"groups[{gi}] ({group.name or kind}): " if config.groups else ""
        resources = ray_resources(group.resources or config.resources)
        search.check_ranges(model, fixed, grid, config.search, where)
        for point in search.points(grid, config.search, gi):  # grid combinations or seeded draws
            raw = {**fixed, **point}
            try:
                params = model(**raw)
            except ValidationError as e:
                raise ConfigError(format_validation(e, where)) from None
            dumped = params.model_dump(mode="json")
            rid = run_id(kind, dumped)
            trials.setdefault(rid, {"run_id": rid, "kind": kind, "params": dumped, "resources": resources})
    search.check_optuna(config)
    search.check_scheduler(config, list(trials.values()))
    return list(trials.values())


def load(path: str | Path) -> tuple[SweepConfig, str]:
    """Read and validate a sweep YAML; returns the config and its text (stored with the sweep)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: no such file {str(path)!r}")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, kind, fixed, grid, resources")
    return parse(data, where=f"{path}: "), text


def parse(data: dict[str, Any], where: str = "") -> SweepConfig:
    try:
        return SweepConfig(**data)
    except ValidationError as e:
        raise ConfigError(format_validation(e, where)) from None
