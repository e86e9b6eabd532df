"""Where a task's events go when it runs: a folder, the store, a Ray trial, a progress bar."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch

from priorlab.analysis.store import Store
from priorlab.tasks.images import png_bytes

from priorlab.vocab import RESTORED


class DirSink:
    """`priorlab dip --out DIR`: metrics.csv (one row per logging step), PNG snapshots, summary.json,
    and the run's answer as restored.png (the restored photo, at the image's own size)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.rows: dict[int, dict[str, float]] = {}

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.rows.setdefault(step, {}).update({k: float(v) for k, v in values.items()})
        self._write_csv()  # rewritten each logging step so a crash keeps what was logged

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        file = f"{name}.png" if name == RESTORED else f"{name}_{step:06d}.png"
        (self.out / file).write_bytes(png_bytes(image))

    def _write_csv(self) -> None:
        names = sorted({k for r in self.rows.values() for k in r})
        tmp = self.out / "metrics.csv.tmp"
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", *names])
            for step in sorted(self.rows):
                w.writerow([step, *(self.rows[step].get(n, "") for n in names)])
        tmp.replace(self.out / "metrics.csv")

    def finish(self, summary: dict[str, Any], params: dict[str, Any], kind: str, run_id: str) -> None:
        record = {**summary, "kind": kind, "run_id": run_id, "params": params}
        (self.out / "summary.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


class StoreSink:
    """`priorlab dip --store DIR`: the single run written straight into the store."""

    def __init__(self, store: Store, run_id: str):
        self.store, self.run_id = store, run_id
        self.keys: tuple[set, set] = (set(), set())  # (step, name) of metric rows, of artifacts

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.store.log_metrics(self.run_id, step, {k: float(v) for k, v in values.items()})
        self.keys[0].update((step, k) for k in values)

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        self.store.log_artifact(self.run_id, step, name, png_bytes(image))
        self.keys[1].add((step, name))

    def sent(self) -> tuple[int, int]:
        """How many distinct metric rows and artifacts were written (`finish_run` checks them)."""
        return len(self.keys[0]), len(self.keys[1])


class TeeSink:
    """Forwards every event to several sinks."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def metrics(self, step: int, values: dict[str, float]) -> None:
        for s in self.sinks:
            s.metrics(step, values)

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        for s in self.sinks:
            s.artifact(step, name, image)


class ProgressSink:
    """A tqdm bar over the task's steps, with the latest metrics beside it."""

    def __init__(self, total: int | None, desc: str, show: tuple[str, ...] = ("psnr", "loss")):
        from tqdm import tqdm

        # A run with no steps (a baseline) would show an empty `0it` bar: no bar at all then.
        self.bar = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, disable=not total)
        self.show = show

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if self.bar.total is not None:
            self.bar.update(max(0, min(step, self.bar.total) - self.bar.n))
        shown = {k: f"{values[k]:.4g}" for k in self.show if k in values}
        if shown:
            self.bar.set_postfix(shown, refresh=False)

    def artifact(self, step: int, name: str, image: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        self.bar.close()
