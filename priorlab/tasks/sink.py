"""The task contract: a task is `run(params, sink) -> summary`.

Tasks report through a sink and never learn where they run: the CLI gives them a folder
or store sink, a Ray Tune trial a sink that forwards to the store writer, tests a
`MemorySink`. Images reach the sink as float tensors in [0, 1]; sinks encode PNG at the
edge (`priorlab.tasks.images.png_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Sink(Protocol):
    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Scalars at one step. Called only at logging steps (it may sync the GPU)."""

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        """One image `(3, H, W)` or `(1, 3, H, W)`, float in [0, 1], e.g. "output", "clean"."""


@dataclass
class MemorySink:
    """Keeps everything in memory: for tests and notebooks."""

    rows: list[tuple[int, str, float]] = field(default_factory=list)
    images: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.rows.extend((step, k, float(v)) for k, v in values.items())

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        self.images[(step, name)] = image.detach().to("cpu", torch.float32).reshape(-1, *image.shape[-2:])

    def series(self, name: str) -> list[tuple[int, float]]:
        """`[(step, value), ...]` of one metric, in logging order."""
        return [(s, v) for s, k, v in self.rows if k == name]

    def last(self, name: str) -> float:
        return self.series(name)[-1][1]


class NullSink:
    """Discards everything: for benchmarks that time the task alone."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        pass

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        pass
