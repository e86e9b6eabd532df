"""Writer throughput into PostgreSQL + S3 vs a SQLite folder, run by hand (not by CI):

    .venv/bin/python tests/benchmarks/bench_shared_store.py [--trials 200] [--steps 20] [--images 4]

The load of a 200-trial sweep, as the sweep's writer actor receives it: per trial a claim
(`start_run`), `--steps` batches of metric rows (8 metrics each), `--images` 64x64 PNG
artifacts, and the finish; 4 trials in flight at once, as 4 trials on a small cluster send
them. The same load goes once into a fresh SQLite folder and once into PostgreSQL + an
S3-compatible server (a throwaway local PostgreSQL cluster and moto's S3 server, started here:
tests/servers.py), each through a real writer actor on embedded Ray; and, to show the
database's share alone, into PostgreSQL with the files in a folder.
Target: PostgreSQL + S3 within 2x of the folder's wall time. moto's own CPU is printed: it
runs on the same cores as the writer here, which a real object store does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def load(store: str, artifacts: str | None, n_trials: int, n_steps: int, n_images: int) -> dict:
    import numpy as np
    import ray

    from priorlab.cluster.writer import start_writer
    from synthetic import encode_png

    writer = start_writer(store, artifacts)
    rng = np.random.default_rng(0)
    pngs = [encode_png(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(n_trials * n_images)]
    runs = [{"run_id": f"r{i:04d}", "kind": "dip", "params": {"seed": i, "sigma": 0.1}} for i in range(n_trials)]
    t0 = time.perf_counter()
    ray.get(writer.upsert_sweep.remote("load", "kind: dip\n", "bench"))
    ray.get(writer.register_runs.remote("load", runs))

    def trial(i: int) -> list:
        rid = runs[i]["run_id"]
        refs = [writer.start_run.remote(rid, "bench")]
        for step in range(n_steps):
            rows = [(step * 10, f"m{k}", float(np.sin(i + step + k))) for k in range(8)]
            images = [(step * 10, f"img{step}", pngs[i * n_images + step])] if step < n_images else []
            for k in range(n_images) if step == n_steps - 1 else []:
                images.append((step * 10, f"final{k}", pngs[i * n_images + k]))
            refs.append(writer.log.remote(rid, rows, images))
        refs.append(writer.finish_run.remote(rid, "done", {"best_psnr": float(i)}, None))
        return refs

    in_flight: list = []
    for i in range(n_trials):
        in_flight.append(trial(i))
        if len(in_flight) >= 4:
            ray.get(in_flight.pop(0))
    for refs in in_flight:
        ray.get(refs)
    ray.get(writer.flush.remote())  # what a sweep does before it counts: everything committed
    wall = time.perf_counter() - t0
    ray.kill(writer)
    rows = n_trials * n_steps * 8
    return {"wall": wall, "rows_per_s": rows / wall, "trials_per_s": n_trials / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1,
                    help="side-by-side pairs to run (fresh store each); the median ratio is the result")
    args = ap.parse_args()
    import statistics

    import ray

    from servers import PostgresServer, S3Server

    pg, s3 = PostgresServer(), S3Server()
    os.environ.update(s3.env)
    pairs = []
    try:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        tmp = Path(tempfile.mkdtemp(prefix="bench-shared-"))
        for i in range(args.repeat):
            folder = load(str(tmp / f"store{i}"), None, args.trials, args.steps, args.images)
            # PostgreSQL with the files in a folder: the database's share on its own.
            pg_only = load(pg.new_database(), str(tmp / f"files{i}"), args.trials, args.steps, args.images)
            db, bucket = pg.new_database(), s3.new_bucket()
            moto_before = cpu_seconds(s3.proc.pid)
            shared = load(db, bucket, args.trials, args.steps, args.images)
            pairs.append((folder, pg_only, shared, cpu_seconds(s3.proc.pid) - moto_before))
        ray.shutdown()
    finally:
        pg.close()
        s3.close()
    print(f"\n{args.trials} trials x ({args.steps} metric batches of 8 rows, {args.images}+{args.images} PNGs) "
          "through the writer actor")
    for folder, pg_only, shared, moto_cpu in pairs:
        for name, r in (("SQLite folder", folder), ("PostgreSQL + folder files", pg_only),
                        ("PostgreSQL + S3 (moto)", shared)):
            print(f"  {name:<26} {r['wall']:7.1f} s  {r['rows_per_s']:9,.0f} metric rows/s  {r['trials_per_s']:6.1f} trials/s")
        print(f"  ratio {shared['wall'] / folder['wall']:.2f}x (PostgreSQL alone {pg_only['wall'] / folder['wall']:.2f}x); "
              f"moto's S3 server used {moto_cpu:.1f} CPU s of this machine's {os.cpu_count()} cores meanwhile "
              "(a real object store's CPU is elsewhere)")
    ratios = [shared["wall"] / folder["wall"] for folder, _, shared, _ in pairs]
    pg_ratios = [pg_only["wall"] / folder["wall"] for folder, pg_only, _, _ in pairs]
    print(f"median ratio {statistics.median(ratios):.2f}x over {len(ratios)} runs (target <= 2x); "
          f"PostgreSQL with folder files {statistics.median(pg_ratios):.2f}x")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
