"""Sweep configs: a YAML file validated at the edge and expanded into trial parameter sets.

A sweep names a task kind, fixed parameters, grid axes and resources. `groups` (optional)
are several grids whose union makes the sweep, each may switch the kind (DIP beside the
classical baselines) and inherits the top-level settings its kind accepts. Every trial is
validated by its task's own parameter model before anything starts, so a typo or an
impossible combination is an error that names the field, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import reprlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from priorlab.cluster import search
from priorlab.cluster.search import Scheduler, Search
from priorlab.tasks.registry import KINDS


class ConfigError(ValueError):
    """A sweep config that cannot run; the message says where and why."""


# Limits on what a config file may be: a sweep config is a few kilobytes of YAML. They keep a
# hostile or broken file (a YAML "billion laughs": a few hundred bytes of nested aliases that
# expand to gigabytes) from taking the machine down before validation can say what is wrong.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_NODES = 100_000  # YAML nodes after alias expansion (a large sweep has a few hundred)
MAX_SHOWN = 80  # characters of a value quoted in an error message


class Resources(BaseModel):
    # inf/nan would pass `gt=0` and ask Ray for a slot no node has: refused here.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
    # issue 11: fit up to K same-shaped DIP runs together in one trial (cluster/packing.py)
    pack: int = Field(
        1, ge=1, le=256, description="DIP runs of one network shape fitted together per trial (1: no packing)"
    )

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


def run_id(kind: str, params: dict[str, Any]) -> str:
    """Deterministic id of one trial: the same kind and parameters always give the same id."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ray_resources(res: Resources) -> dict[str, float]:
    """A trial's request in Ray's resource names."""
    out = {"CPU": res.cpu, "GPU": res.gpu, **res.custom}
    return {k: v for k, v in out.items() if v}


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A value's repr for a message, at most `limit` characters (a huge input stays one line)."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = limit, limit, 8, 8, 3
    text = r.repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loc(loc: tuple) -> str:
    """("groups", 1, "fixed") -> "groups[1].fixed"."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _model_at(model: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (walks nested models and lists of them)."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _inner_model(field.annotation) if field else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def unknown_key(block: str, key: str, allowed: typing.Iterable[str], what: str = "") -> str:
    """`fixed.iteration: unknown key (for kind dip); did you mean 'iterations'? allowed: ...`."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    place = f"{block}.{clip(str(key))}" if block else clip(str(key))
    return f"{place}: unknown key{what}; {hint}allowed: {', '.join(allowed)}"


def format_validation(err: ValidationError, where: str = "", as_flags: bool = False,
                      model: type[BaseModel] | None = None, block: str = "") -> str:
    """One line per bad field: where, the field (or its command-line flag), the value, what is allowed.

    `model` (the validated model) lets an unknown key be answered with the nearest valid one;
    `block` names the config block the fields came from (`fixed`, `groups[1].grid`, ...).
    """
    return format_errors(err.errors(), where, as_flags=as_flags, model=model, block=block)


def format_errors(errors: list[dict], where: str = "", as_flags: bool = False,
                  model: type[BaseModel] | None = None, block: str = "") -> str:
    lines = []
    for e in errors:
        loc = tuple(e["loc"])
        field = _loc(loc) or "(parameters)"
        if as_flags:
            field = "--" + field.replace("_", "-")
        elif block:
            field = f"{block}.{field}"
        holder = _model_at(model, loc[:-1]) if loc else None
        if e["type"] == "extra_forbidden" and holder is not None and not as_flags:
            parent = field.rsplit(".", 1)[0] if "." in field else ""
            lines.append(where + unknown_key(parent, loc[-1], holder.model_fields))
            continue
        value = e.get("input")
        value_text = "" if isinstance(value, dict) else f" = {shown(value)}"
        msg = e["msg"] if len(e["msg"]) <= 4 * MAX_SHOWN else e["msg"][: 4 * MAX_SHOWN] + "..."
        lines.append(f"{where}{field}{value_text}: {msg}")
    return "\n".join(lines)


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
    Every user image file is checked once (it decodes, within the size limits).
    """
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
        search.check_ranges(model, fixed, grid, config.search, where)
        for point in search.points(grid, config.search, gi):  # grid combinations or seeded draws
            raw = {**fixed, **point}
            if isinstance(raw.get("corrupted"), str) and partners.get(raw["corrupted"]):  # a pair from a folder: its clean file is the reference
                if raw.get("image") is not None:
                    raise ConfigError(f"{where}image {shown(raw['image'])}: corrupted names a folder of pairs, "
                                      "whose clean/ files are the references; drop image")
                raw["image"] = partners[raw["corrupted"]]
            try:
                params = model(**raw)
            except ValidationError as e:
                raise ConfigError(_trial_error(e, where, origin, model)) from None
            dumped = params.model_dump(mode="json")
            rid = run_id(kind, dumped)
            trials.setdefault(rid, {"run_id": rid, "kind": kind, "params": dumped, "resources": resources})
    _check_image_files(trials.values())
    search.check_optuna(config)
    search.check_scheduler(config, list(trials.values()))
    return list(trials.values())


def _trial_error(err: ValidationError, where: str, origin: dict[str, str], model: type[BaseModel]) -> str:
    """A trial's validation error, each field prefixed by the config block it came from."""
    def block(e: dict) -> str:
        key = e["loc"][0] if e["loc"] else None
        return origin.get(key, "") if isinstance(key, str) else ""

    return "\n".join(format_errors([e], where, model=model, block=block(e)) for e in err.errors())


def _check_image_files(trials) -> None:
    from priorlab.tasks.images import BUNDLED, IMAGE_FIELDS, check_image_file

    names = {(t["params"].get(f), f) for t in trials for f in IMAGE_FIELDS}
    for name, field in sorted(n for n in names if isinstance(n[0], str) and n[0] not in BUNDLED):
        try:
            check_image_file(name, field)
        except ValueError as e:
            raise ConfigError(str(e)) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML itself keeps the last)."""

    where = ""  # the file, for messages

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                raise ConfigError(f"{self.where}line {line}: duplicate key {shown(key)} (first given on line {first}); "
                                  "give each key once")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded, counting up to `limit` (an alias
    is a shared reference in the node graph, so nested aliases multiply without copying)."""
    count, stack = 0, [node]
    while stack and count <= limit:
        n = stack.pop()
        count += 1
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))
    return count


def read_yaml(path: Path) -> tuple[Any, str]:
    """A YAML file -> (Python data, its text), refusing what no sweep config is: too large a file, text that
    is not UTF-8, aliases that expand past `MAX_CONFIG_NODES`, a key given twice."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes is too large for a sweep config (at most {MAX_CONFIG_BYTES:,})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                          "save the config as UTF-8") from None
    loader = _StrictLoader(text)
    loader.where = f"{path}: "
    try:
        node = loader.get_single_node()  # the node graph: aliases are references, not copies yet
        if node is None:
            return None, text
        n = _expanded_size(node, MAX_CONFIG_NODES)
        if n > MAX_CONFIG_NODES:
            raise ConfigError(f"{path}: YAML aliases expand to more than {MAX_CONFIG_NODES:,} values "
                              "(an alias bomb?); a sweep config needs far fewer")
        return loader.construct_document(node), text
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {clip(' '.join(str(e).split()), 300)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()


# Settings that say how a sweep runs, not which runs it holds: changing them under a stored
# sweep name does not make another sweep (a larger search budget adds samples to the same one).
OPERATIONAL = ("description", "resources", "retries", "max_concurrent", "pack")  # pack: same runs, same ids
OPERATIONAL_SEARCH = ("num_samples",)


def meaning(text: str) -> dict[str, Any] | None:
    """What a config text means (its validated fields less the operational ones), or None when
    it no longer validates; texts that differ only in comments, layout, key order, resources,
    retries or search budget mean the same."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None or _expanded_size(node, MAX_CONFIG_NODES) > MAX_CONFIG_NODES:
            return None
        return _without_operational(SweepConfig(**loader.construct_document(node)).model_dump())
    except Exception:  # an old text that is not valid now is simply not the same config
        return None
    finally:
        loader.dispose()


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
    return parse(data, where=f"{path}: "), text


def parse(data: dict[str, Any], where: str = "") -> SweepConfig:
    try:
        return SweepConfig(**data)
    except ValidationError as e:
        raise ConfigError(format_validation(e, where, model=SweepConfig)) from None
