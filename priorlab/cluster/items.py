"""What a sweep hands Tune, as typed records instead of dicts told apart by their keys.

A `RunSpec` is one run of the sweep (what the store holds a row for). What Tune schedules is
a work item: a `TrialItem` (one run), a `PackItem` (same-shaped DIP runs fitted together), a
`ShardItem` (one scoring shard of a sharded run) or, for an Optuna search, a `DrawItem` (a run
still to be drawn from the space). `name` is the Tune trial's name and `resources` its
placement request.

Tune carries them as plain dicts (`to_tune`, read back by `from_tune`): Tune swaps any object
in a grid search for a placeholder until the trial starts, so a trial name or a resource
request made from its config would see the placeholder, not the item. A dict is the item's
fields as they always were, plus `"item"`, the type's tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: its id, kind and validated parameters (JSON form), the resources
    one trial of it asks for, and `force` (rerun it even when the store holds it final)."""

    run_id: str
    kind: str
    params: dict[str, Any]
    resources: dict[str, float]
    force: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        """From the sweep's trial record (`expand`, `work.decide`): `force` only where set."""
        return cls(run_id=d["run_id"], kind=d["kind"], params=d["params"], resources=d["resources"],
                   force=bool(d.get("force")))

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "kind": self.kind, "params": self.params, "resources": self.resources}
        return {**out, "force": True} if self.force else out

    def task_params(self):
        """The task's own validated parameter model of this run."""
        from priorlab.tasks.registry import KINDS

        return KINDS[self.kind].params(**self.params)


class _OfOneRun:
    """An item of one run: its kind, its request and its runs are the run's."""

    run: RunSpec

    @property
    def kind(self) -> str:
        return self.run.kind

    @property
    def resources(self) -> dict[str, float]:
        return self.run.resources

    @property
    def runs(self) -> list[RunSpec]:
        return [self.run]


@dataclass(frozen=True)
class TrialItem(_OfOneRun):
    """A Tune trial of one run."""

    run: RunSpec

    TAG = "trial"

    def to_dict(self) -> dict[str, Any]:
        return self.run.to_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialItem":
        return cls(RunSpec.from_dict(d))

    @property
    def name(self) -> str:
        return self.run.run_id


@dataclass(frozen=True)
class PackItem:
    """A Tune trial that fits same-shaped DIP runs together (`packing.pack_trials`); each
    member stays its own run in the store."""

    pack_id: str
    members: tuple[RunSpec, ...]
    resources: dict[str, float]

    TAG = "pack"

    def to_dict(self) -> dict[str, Any]:
        return {"pack_id": self.pack_id, "name": self.pack_id, "kind": self.kind,
                "members": [m.to_dict() for m in self.members], "resources": self.resources}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PackItem":
        return cls(d["pack_id"], tuple(RunSpec.from_dict(m) for m in d["members"]), d["resources"])

    @property
    def name(self) -> str:
        return self.pack_id

    @property
    def kind(self) -> str:
        return self.members[0].kind

    @property
    def runs(self) -> list[RunSpec]:
        return list(self.members)


@dataclass(frozen=True)
class ShardItem(_OfOneRun):
    """A Tune trial that scores shard `index` (of `n`) of a sharded run; the run itself is
    finished later by its own `TrialItem`, which gathers the shards."""

    run: RunSpec
    index: int
    n: int

    TAG = "shard"

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "index": self.index, "n": self.n, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ShardItem":
        return cls(RunSpec.from_dict(d), d["index"], d["n"])

    @property
    def name(self) -> str:
        return f"{self.run.run_id}-s{self.index}"


@dataclass(frozen=True)
class DrawItem:
    """An Optuna trial before its point is drawn: the fixed parameters and resources of the
    space (`search.concrete_trial` makes the run from them and the suggestion)."""

    kind: str
    sweep: str
    fixed: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)

    name = None  # no run id until the point is drawn: Tune's trial id names it
    TAG = "draw"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sweep": self.sweep, "fixed": self.fixed, "resources": self.resources}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DrawItem":
        return cls(d["kind"], d["sweep"], d["fixed"], d["resources"])

    @property
    def runs(self) -> list[RunSpec]:
        return []


WorkItem = Union[TrialItem, PackItem, ShardItem, DrawItem]
_TYPES = {t.TAG: t for t in (TrialItem, PackItem, ShardItem, DrawItem)}


def to_tune(item: WorkItem) -> dict[str, Any]:
    """The dict Tune carries for `item` (see the module doc)."""
    return {"item": item.TAG, **item.to_dict()}


def from_tune(d: dict[str, Any]) -> WorkItem:
    """The item a dict of `to_tune` stands for."""
    return _TYPES[d["item"]].from_dict(d)
