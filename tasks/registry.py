"""Every sweep kind: its name, its parameter model and its run function.

A kind is added by appending one `TaskKind(...)` line to `_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from tasks.sink import Sink
from tasks.dip import BaselineParams, DipParams, run, run_baseline


@dataclass(frozen=True)
class TaskKind:
    name: str
    params: type[BaseModel]  # pydantic model, extra="forbid", validated at construction
    run: Callable[[BaseModel, Sink], dict]  # run(params, sink) -> flat JSON-able summary


_KINDS = [
    TaskKind("dip", DipParams, run),
    TaskKind("dip-baseline", BaselineParams, run_baseline),
]

KINDS: dict[str, TaskKind] = {k.name: k for k in _KINDS}
