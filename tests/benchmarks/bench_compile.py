"""`compile: true` vs the eager DIP step on the CPU (inductor's C++ backend), run by hand:

    .venv/bin/python tests/benchmarks/bench_compile.py [--sizes 64 128] [--iterations 100] [--rounds 3]

Per network: the loop's it/s eager and compiled (best of `rounds`, measured alternately so a
shared machine's load hits both alike; the first compiled run pays the compile and is timed
apart), and best PSNR of both for the same seeds (compile must not change results beyond
run-to-run noise). On a GPU the same switch uses CUDA graphs: the GPU kit measures that
(`gpu_kit.py`, `make gpu-check`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from priorlab.tasks.dip import DipParams, run  # noqa: E402
from priorlab.tasks.sink import NullSink  # noqa: E402

NETS = [("seed-double", 2, 16), ("skip", 4, 16)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[64])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    one, five, _ = os.getloadavg()
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s); load average {one:.1f} (5 min {five:.1f})")
    print("| network | size | eager it/s | compiled it/s | speed-up | first compiled run (compile) | "
          "best PSNR eager / compiled (per seed) |")
    print("|---|---|---|---|---|---|---|")
    for arch, depth, width in NETS:
        for size in args.sizes:
            base = dict(arch=arch, depth=depth, width=width, size=size, iterations=args.iterations,
                        log_every=max(1, args.iterations // 4), device="cpu")
            t = time.perf_counter()
            run(DipParams(**base, compile=True), NullSink())  # the compile, paid once per process
            first = time.perf_counter() - t
            eager, comp = [], []
            for _ in range(args.rounds):
                eager.append(run(DipParams(**base), NullSink())["iters_per_s"])
                comp.append(run(DipParams(**base, compile=True), NullSink())["iters_per_s"])
            psnrs = []
            for seed in range(args.seeds):
                a = run(DipParams(**base, seed=seed), NullSink())["best_psnr"]
                b = run(DipParams(**base, seed=seed, compile=True), NullSink())["best_psnr"]
                psnrs.append(f"{a:.2f} / {b:.2f}")
            print(f"| {arch} d{depth} w{width} | {size} | {max(eager):.1f} | {max(comp):.1f} | "
                  f"{max(comp) / max(eager):.2f}x | {first:.1f} s | {'; '.join(psnrs)} |", flush=True)


if __name__ == "__main__":
    main()
