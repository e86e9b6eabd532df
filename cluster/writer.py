"""The one writer: a Ray actor pinned to the driver's node that owns the results store.

Trials on any node send their rows and PNG bytes here through Ray, so no node needs a
shared disk with the driver. Calls from one trial run in the order it made them, so a
trial's final `finish_run` lands after all of its rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from analysis.store import Store


class StoreWriter:
    def __init__(self, root: str):
        self.store = Store(root)

    def upsert_sweep(self, name: str, config_text: str, host: str) -> None:
        self.store.upsert_sweep(name, config_text, host)

    def set_sweep_status(self, name: str, status: str) -> None:
        self.store.set_sweep_status(name, status)

    def register_runs(self, sweep: str, runs: list[dict[str, Any]]) -> None:
        self.store.register_runs(sweep, runs)

    def start_run(self, run_id: str, node: str | None) -> None:
        self.store.start_run(run_id, node=node)

    def log(self, run_id: str, rows: list[tuple[int, str, float]], images: list[tuple[int, str, bytes]]) -> None:
        """One batch from a trial: metric rows and PNG artifacts."""
        with self.store.batch():
            if images:
                self.store.log_artifacts_many(run_id, images)
            if rows:
                self.store.log_metrics_many(run_id, rows)

    def finish_run(self, run_id: str, status: str, summary: dict | None, error: str | None) -> None:
        self.store.finish_run(run_id, status, summary=summary, error=error)

    def mark_unfinished(self, run_ids: list[str], status: str = "interrupted") -> None:
        self.store.mark_unfinished(run_ids, status=status)

    def ping(self) -> bool:
        return True

    # Shard outputs of a sharded run (e.g. scored StyleGAN samples) wait here, beside the
    # store, until the run's finishing trial collects them; kept on disk so a resumed sweep
    # does not score a shard twice.
    def _shard_path(self, run_id: str, index: int) -> Path:
        return self.store.root / "shards" / run_id / f"{index:05d}.npz"

    def put_shard(self, run_id: str, index: int, data: bytes) -> None:
        path = self._shard_path(run_id, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def shards_present(self, run_id: str) -> list[int]:
        folder = self.store.root / "shards" / run_id
        return sorted(int(p.stem) for p in folder.glob("*.npz")) if folder.is_dir() else []

    def get_shards(self, run_id: str, n_shards: int) -> list[bytes]:
        missing = [i for i in range(n_shards) if not self._shard_path(run_id, i).is_file()]
        if missing:
            raise RuntimeError(f"run {run_id}: shards {missing} of {n_shards} were never scored")
        return [self._shard_path(run_id, i).read_bytes() for i in range(n_shards)]


def start_writer(root: str | Path) -> "ray.actor.ActorHandle":
    """Start the writer on this (the driver's) node; it dies with the driver."""
    here = ray.get_runtime_context().get_node_id()
    actor = (
        ray.remote(StoreWriter)
        .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
        .remote(str(Path(root).resolve()))
    )
    ray.get(actor.ping.remote())  # surface a store error (bad path, newer schema) now
    return actor
