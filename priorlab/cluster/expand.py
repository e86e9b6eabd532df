"""Expanding a validated sweep config into its runs: every group's grid (or seeded draws), each
point validated by its task's own model and given its deterministic run id.

Axes can belong to one task (`region` only to inpainting), so the duplicates they would make
collapse here; an error names the config block the bad value was written in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from priorlab import vocab
from priorlab.cluster import inputs as input_files
from priorlab.cluster import space
from priorlab.cluster.space import INT64
from priorlab.cluster.config import Group, SweepConfig, ray_resources
from priorlab.cluster.errors import ConfigError, format_errors, shown, unknown_key
from priorlab.tasks import inputs as task_inputs
from priorlab.tasks.registry import KINDS


def run_id(kind: str, params: dict[str, Any]) -> str:
    """A run's id (`vocab.run_id`) from the parameters that decide its results: execution-only
    switches a model lists in `RUN_ID_EXCLUDES` (DIP's `compile`) do not count."""
    skip = getattr(KINDS[kind].params, "RUN_ID_EXCLUDES", ()) if kind in KINDS else ()
    return vocab.run_id(kind, {k: v for k, v in params.items() if k not in skip})


def _expand_image_axis(values: list[Any]) -> list[Any]:
    """An image value that names a folder expands to the images in it."""
    from priorlab.tasks.images import expand_images

    out: list[Any] = []
    for v in values:
        out.extend(expand_images(v) if isinstance(v, str) else [v])
    return out


def _expand_pairs_axis(fixed: dict[str, Any], grid: dict[str, Any]) -> dict[str, str | None]:
    """`corrupted` values that name a folder of pairs become one grid value per pair
    (`tasks.images.expand_pairs`); returns {corrupted file: its clean reference or None}."""
    from priorlab.tasks.images import expand_pairs

    values = fixed.pop("corrupted") if "corrupted" in fixed else grid.get("corrupted")
    if values is None:
        return {}
    pairs = [pair for v in (values if isinstance(values, list) else [values])
             for pair in (expand_pairs(v) if isinstance(v, str) else [(v, None)])]
    if len(pairs) == 1 and not isinstance(values, list):
        fixed["corrupted"] = pairs[0][0]
        grid.pop("corrupted", None)
    else:
        grid["corrupted"] = [c for c, _ in pairs]
    return dict(pairs)


def _check_keys(config: SweepConfig, groups: list[Group]) -> None:
    """Every fixed/grid key is a parameter of the kind it reaches; an unknown one is named in
    the block it was written in, with the nearest valid key."""
    def fields(kind: str) -> set[str]:
        return set(KINDS[kind].params.model_fields)

    # Top-level keys reach every group of the sweep's kind whole; groups of another kind take
    # only the keys they accept. So a top-level key must fit the sweep's kind if any group
    # runs it, else at least one group's kind.
    own = [g for g in groups if g.kind is None or g.kind == config.kind]
    if own:
        top, what = fields(config.kind), f" for kind {config.kind}"
    else:
        kinds = sorted({g.kind for g in groups})
        top, what = set().union(*(fields(k) for k in kinds)), f" for kinds {', '.join(kinds)}"
    for block in ("fixed", "grid"):
        for key in getattr(config, block):
            if key not in top:
                raise ConfigError(unknown_key(block, key, top, what))
    if not config.groups:
        return
    for gi, g in enumerate(groups):
        kind = g.kind or config.kind
        for block in ("fixed", "grid"):
            for key in getattr(g, block):
                if key not in fields(kind):
                    raise ConfigError(unknown_key(f"groups[{gi}].{block}", key, fields(kind), f" for kind {kind}"))


def expand(config: SweepConfig) -> list[dict[str, Any]]:
    """Every trial of the sweep: `[{"run_id", "kind", "params", "resources"}]`, validated and
    de-duplicated; `resources` is what one trial asks Ray for (`{"CPU": 1, "GPU": 0.25, ...}`).

    Axes that a task ignores for a given combination (a region for denoising) are
    normalised away by the task's model, so the duplicates they would create collapse here.
    Every input file the trials name (images, checkpoints, classifiers, normals) is checked
    once (cluster/inputs.py); relative names resolve against the config file's folder.
    """
    from priorlab.cluster.search import probe_trials

    with task_inputs.relative_to(config.folder):
        trials = _trials(config)
        probes = probe_trials(config)  # Optuna: the files its runs will name
    try:
        input_files.gather([*trials, *probes], config.folder)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return trials


def _trials(config: SweepConfig) -> list[dict[str, Any]]:
    groups = config.groups or [Group()]
    _check_keys(config, groups)
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
        # Which block each key was written in, so an error names the place to edit.
        prefix = f"groups[{gi}]." if config.groups else ""
        origin = {k: ("fixed" if k in config.fixed else "grid") for k in (*config.fixed, *config.grid)}
        origin.update({k: f"{prefix}fixed" for k in group.fixed})
        origin.update({k: f"{prefix}grid" for k in group.grid})
        try:
            if isinstance(grid.get("image"), list):
                grid["image"] = _expand_image_axis(grid["image"])
            partners = _expand_pairs_axis(fixed, grid)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        where = f"groups[{gi}] ({group.name or kind}): " if config.groups else ""
        resources = ray_resources(group.resources or config.resources)
        space.check_ranges(model, fixed, grid, config.search, where)
        for point in space.points(grid, config.search, gi):  # grid combinations or seeded draws
            raw = {**fixed, **point}
            if isinstance(raw.get("corrupted"), str) and partners.get(raw["corrupted"]):
                if raw.get("image") is not None:  # a pair from a folder: its clean file is the reference
                    raise ConfigError(f"{where}image {shown(raw['image'])}: corrupted names a folder of pairs, "
                                      "whose clean/ files are the references; drop image")
                raw["image"] = partners[raw["corrupted"]]
            try:
                params = model(**raw)
            except ValidationError as e:
                raise ConfigError(_trial_error(e, where, origin, model)) from None
            dumped = params.model_dump(mode="json")
            _check_int64(dumped, where, origin)
            rid = run_id(kind, dumped)
            trials.setdefault(rid, {"run_id": rid, "kind": kind, "params": dumped, "resources": resources})
    space.check_optuna(config)
    space.check_scheduler(config, list(trials.values()))
    space.check_metrics(config, list(trials.values()))
    return list(trials.values())


def _check_int64(params: dict[str, Any], where: str, origin: dict[str, str]) -> None:
    """Every integer a run stores must be a 64-bit one (SQLite's INTEGER, torch's seeds): a
    larger one would end the sweep in an overflow traceback after Ray started."""
    def walk(value: Any) -> Any:
        if isinstance(value, bool):
            return None
        if isinstance(value, int) and not -INT64 <= value < INT64:
            return value
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        return next((bad for v in items if (bad := walk(v)) is not None), None)

    for key, value in params.items():
        bad = walk(value)
        if bad is not None:
            block = origin.get(key, "fixed")
            raise ConfigError(f"{where}{block}.{key} = {bad}: out of range (allowed: integers within ±2**63)")


def _trial_error(err: ValidationError, where: str, origin: dict[str, str], model: type[BaseModel]) -> str:
    """A trial's validation error, each field prefixed by the config block it came from."""
    def block(e: dict) -> str:
        key = e["loc"][0] if e["loc"] else None
        return origin.get(key, "") if isinstance(key, str) else ""

    return "\n".join(format_errors([e], where, model=model, block=block(e)) for e in err.errors())
