"""Images per second sampling a StyleGAN2 generator on CPU (run by hand, not by CI).

    .venv/bin/python tests/benchmarks/bench_stylegan_sample.py [--resolutions 64 256] [--threads 2]

The generator is a seeded random one with realistic-ish but CPU-feasible widths (default:
z_dim = w_dim = 512, 8 mapping layers, channel_base 8192, channel_max 256: channels 256 up to
32 px, then 128 @ 64, 64 @ 128, 32 @ 256; config-f uses 32768 / 512). Timed: the full G(z)
(mapping, truncation 0.7, synthesis, const noise) under no_grad, after one warm-up batch.
Both modulation paths are timed: fused (one grouped conv, per-sample weights; NVIDIA's inference
default) and unfused (shared conv, activations scaled before and after).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from priorlab.tasks.stylegan.networks import Generator, GeneratorConfig  # noqa: E402


def bench(G: Generator, batch: int, fused: bool, min_seconds: float) -> float:
    z = torch.randn(batch, G.z_dim)
    with torch.no_grad():
        G(z, truncation_psi=0.7, fused=fused)  # warm-up: allocations, kernel selection
        n, t0 = 0, time.perf_counter()
        while True:
            G(z, truncation_psi=0.7, fused=fused)
            n += batch
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds and n >= 2 * batch:
                return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--channel-base", type=int, default=8192)
    ap.add_argument("--channel-max", type=int, default=256)
    ap.add_argument("--dim", type=int, default=512, help="z_dim = w_dim")
    ap.add_argument("--min-seconds", type=float, default=2.0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU")
    for res in args.resolutions:
        torch.manual_seed(0)
        cfg = GeneratorConfig(img_resolution=res, z_dim=args.dim, w_dim=args.dim, channel_base=args.channel_base,
                              channel_max=args.channel_max)
        G = Generator(cfg).eval().requires_grad_(False)
        chans = ", ".join(f"{r}:{cfg.channels(r)}" for r in cfg.block_resolutions)
        params = sum(p.numel() for p in G.parameters()) / 1e6
        print(f"\n{res}x{res}  channels {{{chans}}}  {params:.1f}M parameters")
        print(f"{'batch':>5}  {'fused img/s':>11}  {'unfused img/s':>13}")
        for b in args.batch_sizes:
            fused = bench(G, b, True, args.min_seconds)
            unfused = bench(G, b, False, args.min_seconds)
            print(f"{b:>5}  {fused:>11.2f}  {unfused:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
