"""Every sweep kind: its name, its parameter model and its run function.

A kind is added by appending one `TaskKind(...)` line to `_KINDS`. A kind whose work splits
into independent shards (scoring many StyleGAN samples) also names a `Sharding`: the sweep
runs each shard as its own trial, then `finish` once on the gathered shard outputs.

Every run function (and `finish`) is wrapped here by `resources.measured`, so each kind's summary
carries its wall time and peak memory without the job spelling them (the cluster's trial and
`priorlab <kind>` both call `KINDS[name].run`). A sharded run's numbers are its `finish` step's:
the shards ran as other trials, in other processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from priorlab import vocab
from priorlab.tasks.resources import measured
from priorlab.tasks.sink import Sink
from priorlab.tasks.dip import BaselineParams, DipParams, run, run_baseline
from priorlab.tasks.stylegan import TASK_KINDS as STYLEGAN_KINDS
from priorlab.tasks.stylegan.jobs import direction


@dataclass(frozen=True)
class Sharding:
    count: Callable[[BaseModel], int]  # how many shards one run has
    score: Callable[[BaseModel, int, int], dict[str, Any]]  # (params, shard, n_shards) -> arrays
    finish: Callable[[BaseModel, list[dict[str, Any]], Sink], dict]  # all shards -> summary


@dataclass(frozen=True)
class TaskKind:
    name: str
    params: type[BaseModel]  # pydantic model, extra="forbid", validated at construction
    run: Callable[[BaseModel, Sink], dict]  # run(params, sink) -> flat JSON-able summary
    sharding: Sharding | None = None


_SHARDED = {
    vocab.SG_DIRECTION: Sharding(lambda p: p.n_shards, direction.score_shard, measured(direction.finish)),
}

_KINDS = [
    TaskKind(vocab.DIP, DipParams, measured(run)),
    TaskKind(vocab.DIP_BASELINE, BaselineParams, measured(run_baseline)),
    *(TaskKind(name, model, measured(fn), _SHARDED.get(name)) for name, model, fn in STYLEGAN_KINDS),
]

KINDS: dict[str, TaskKind] = {k.name: k for k in _KINDS}
