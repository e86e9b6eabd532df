"""Sweep overhead on the smoke grid, run by hand (not by CI):

    .venv/bin/python tests/benchmarks/bench_sweep.py [--iterations 200 1000]

For each iteration count it runs configs/dip_smoke.yaml on embedded Ray into a fresh store
and prints, measured side by side in one run:
- efficiency: the sum of task compute (each run's own wall_s) / (sweep wall time x cores);
- per-trial overhead: trial wall time (store start -> finish) minus task compute;
- store ingest through the writer actor: metric rows/s and artifacts/s.
Targets: overhead <= 0.5 s per trial; efficiency >= 85% for trials of 5 s or more.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def sweep_once(iterations: int, cores: int) -> dict:
    from priorlab.analysis.store import Store
    from priorlab.cluster.sweep import run_sweep

    cfg = yaml.safe_load((ROOT / "configs" / "dip_smoke.yaml").read_text())
    cfg["name"] = f"bench-{iterations}"
    cfg["fixed"]["iterations"] = iterations
    cfg["fixed"]["snapshots"] = sorted({max(1, iterations * k // 4) for k in (1, 2, 3, 4)})
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    status = run_sweep(str(tmp / "c.yaml"), store_dir=str(tmp / "store"), echo=lambda s: None)
    wall = time.perf_counter() - t0
    runs = Store(tmp / "store").runs(sweep=cfg["name"])
    assert status == 0 and (runs["status"] == "done").all(), runs[["status", "error"]]
    trial_wall = (runs["finished_at"] - runs["started_at"]).dt.total_seconds()
    compute = runs["wall_s"].astype(float)
    return {
        "iterations": iterations, "runs": len(runs), "wall": wall,
        "compute_mean": compute.mean(), "efficiency": compute.sum() / (wall * cores),
        "overhead_mean": (trial_wall - compute).mean(), "overhead_max": (trial_wall - compute).max(),
        # Everything the cores did not spend computing (Tune scheduling, actor start, writer,
        # sweep set-up), spread over the trials.
        "overhead_amortised": (wall * cores - compute.sum()) / len(runs),
    }


def ingest(n_batches: int = 200, rows_per_batch: int = 100, images_per_batch: int = 2) -> dict:
    """Metric rows and artifacts per second through the writer actor, as a trial sends them."""
    import numpy as np
    import ray
    import torch

    from priorlab.cluster.writer import start_writer
    from priorlab.tasks.images import png_bytes

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    writer = start_writer(tmp / "store")
    ray.get(writer.upsert_sweep.remote("ingest", "", "bench"))
    runs = [{"run_id": f"r{i}", "kind": "dip", "params": {"seed": i}} for i in range(4)]
    ray.get(writer.register_runs.remote("ingest", runs))
    g = torch.Generator().manual_seed(0)
    pngs = [png_bytes(torch.rand(3, 64, 64, generator=g)) for _ in range(16)]
    t0 = time.perf_counter()
    refs = []
    for b in range(n_batches):
        rid = f"r{b % 4}"
        rows = [(b, f"m{k}", float(np.sin(b + k))) for k in range(rows_per_batch)]
        images = [(b, f"img{k}", pngs[(b + k) % len(pngs)]) for k in range(images_per_batch)]
        refs.append(writer.log.remote(rid, rows, images))
    ray.get(refs)
    dt = time.perf_counter() - t0
    return {"rows_per_s": n_batches * rows_per_batch / dt, "artifacts_per_s": n_batches * images_per_batch / dt}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, nargs="+", default=[200, 1000])
    args = ap.parse_args()
    import ray

    from priorlab.cluster.runtime import connect

    cores = os.cpu_count() or 1
    print(connect(None, num_cpus=cores))
    results = [sweep_once(n, cores) for n in args.iterations]
    ing = ingest()
    ray.shutdown()
    print(f"\nsmoke grid on embedded Ray, {cores} cores")
    print(f"{'iters':>6} {'runs':>5} {'wall s':>8} {'task s':>7} {'efficiency':>10} {'in-trial overhead s':>20} "
          f"{'max':>6} {'amortised overhead s':>21}")
    for r in results:
        print(f"{r['iterations']:>6} {r['runs']:>5} {r['wall']:>8.1f} {r['compute_mean']:>7.2f} "
              f"{r['efficiency']:>10.1%} {r['overhead_mean']:>20.3f} {r['overhead_max']:>6.2f} {r['overhead_amortised']:>21.2f}")
    print(f"\nstore ingest through the writer actor: {ing['rows_per_s']:,.0f} metric rows/s, "
          f"{ing['artifacts_per_s']:,.0f} artifacts/s (64x64 PNGs)")
    print("targets: overhead <= 0.5 s/trial; efficiency >= 85% when task s >= 5")


if __name__ == "__main__":
    main()
