"""Packed DIP fits vs one run after another, run by hand (not by CI):

    .venv/bin/python tests/benchmarks/bench_packing.py [--steps 10] [--ks 1 2 4 8 16] [--repeats 2]
                                                       [--sweep-iterations 300] [--no-sweep] [--no-steps]

1. Per-step throughput: K members fitted by `priorlab.tasks.dip.pack.run_pack` vs the same K runs by
   `priorlab.tasks.dip.fit.run` one after another, single-threaded (a trial's `cpu: 1`), for the
   smoke grid's networks (seed-double / seed-single, depth 2 / 4, width 16, 64 px) and the
   skip net at 64 px (depth 4, width 16). Packed and sequential are measured alternately
   (interleaved), so a shared machine's load hits both alike; the ratio is what counts.
   Loop time only (the summaries' iterations / iters_per_s), so data preparation is not in it.
2. The whole smoke sweep (configs/dip_smoke.yaml) on embedded Ray with 2 CPUs, without and
   with `pack: 8`, run one after the other into fresh stores; wall time and the ratio.
   Then the Findings verdicts of both stores (analysis.findings.evaluate) side by side:
   packing must not change a conclusion.
Goal: >= 1.5x for the smoke sweep on CPU. The load average is printed with each table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NETS = [
    ("seed-double", 2), ("seed-double", 4), ("seed-single", 2), ("seed-single", 4), ("skip", 4),
]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def step_table(steps: int, ks: list[int], repeats: int) -> None:
    import torch

    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.dip.pack import run_pack
    from priorlab.tasks.sink import NullSink

    torch.set_num_threads(1)
    print(f"\n## Per-step throughput, packed vs sequential ({steps} steps, best of {repeats}, 1 thread; {load()})\n")
    print("| network | K | packed ms/step | sequential ms/step (K runs) | speed-up |")
    print("|---|---|---|---|---|")
    sigmas = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    for arch, depth in NETS:
        for k in ks:
            params = [
                DipParams(arch=arch, depth=depth, width=16, size=64, iterations=steps, log_every=steps,
                          snapshots=[steps], seed=i, sigma=sigmas[i % len(sigmas)], loss=("l2", "l1", "kl")[i % 3])
                for i in range(k)
            ]
            loop = lambda s: s["iterations_done"] / s["iters_per_s"]  # noqa: E731
            packed_s = seq_s = float("inf")
            for _ in range(repeats):  # alternate, keep the best of each: load spikes hit both alike
                packed_s = min(packed_s, loop(run_pack(params, [NullSink() for _ in params])[0]))
                seq_s = min(seq_s, sum(loop(run(p, NullSink())) for p in params))
            row = f"| {arch} d{depth} | {k} | {1000 * packed_s / steps:.1f} | {1000 * seq_s / steps:.1f} |"
            print(f"{row} {seq_s / packed_s:.2f}x |", flush=True)
    print("\n(K = 1: a pack of one runs the plain fit, so its ratio only shows the noise.)")


def smoke(pack: int, iterations: int, tmp: Path) -> tuple[float, Path]:
    """Run the smoke sweep in a subprocess (its own embedded Ray, 2 CPUs); (wall s, store)."""
    cfg = yaml.safe_load((ROOT / "configs" / "dip_smoke.yaml").read_text())
    cfg["name"] = f"smoke-pack{pack}"
    if iterations != cfg["fixed"]["iterations"]:
        cfg["fixed"]["iterations"] = iterations
        cfg["fixed"]["snapshots"] = sorted({max(1, iterations * k // 4) for k in (1, 2, 3, 4)})
    if pack > 1:
        cfg["pack"] = pack
    path = tmp / f"pack{pack}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    store = tmp / f"store-pack{pack}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(ROOT)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(path), "--store", str(store), "--num-cpus", "2"],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    return time.perf_counter() - t0, store


def sweep_table(iterations: int) -> None:
    from priorlab.analysis.findings import evaluate
    from priorlab.analysis.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-packing-"))
    print(f"\n## Smoke sweep, {iterations} iterations, embedded Ray with 2 CPUs ({load()} before)\n")
    plain_s, plain_store = smoke(1, iterations, tmp)
    print(f"- without packing: {plain_s:.1f} s ({load()})", flush=True)
    packed_s, packed_store = smoke(8, iterations, tmp)
    print(f"- with pack: 8:    {packed_s:.1f} s ({load()})", flush=True)
    print(f"- speed-up: {plain_s / packed_s:.2f}x (goal >= 1.5x)")

    a, b = Store(plain_store).runs(), Store(packed_store).runs()
    assert set(a["run_id"]) == set(b["run_id"]), "packing changed the runs"
    fa, fb = evaluate(a).set_index("claim"), evaluate(b).set_index("claim")
    cols = ["verdict", "mean_diff"]
    both = fa[cols].merge(fb[cols], left_index=True, right_index=True, suffixes=("_plain", "_packed"))
    same = (both["verdict_plain"] == both["verdict_packed"]).all()
    print(f"\n## Findings verdicts, unpacked vs packed: {'all equal' if same else 'DIFFERENT'}\n")
    print(both.to_string())
    psnr = a.set_index("run_id")["best_psnr"].sub(b.set_index("run_id")["best_psnr"]).abs()
    print(f"\nbest_psnr |unpacked - packed| over {len(psnr)} runs: max {psnr.max():.4f} dB, mean {psnr.mean():.4f} dB")
    print(f"stores kept in {tmp}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--repeats", type=int, default=2, help="packed/sequential alternations per row (best kept)")
    ap.add_argument("--sweep-iterations", type=int, default=300)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-steps", action="store_true")
    args = ap.parse_args()
    if not args.no_steps:
        step_table(args.steps, args.ks, args.repeats)
    if not args.no_sweep:
        sweep_table(args.sweep_iterations)


if __name__ == "__main__":
    main()
