"""How much the DIP fit loop costs over bare PyTorch, and how close a step gets to the machine.

Run by hand (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_dip_step.py [--threads 1 --arch skip --size 128 ...]

On a shared machine, --threads 1 gives steadier numbers (spinning intra-op threads of a
busy neighbour slow small convs many-fold); the matmul reference uses the same threads.

Prints, measured in one run, side by side:
1. iterations/s of tasks.dip.run (with NullSink) vs a bare PyTorch loop on the same network,
   input and target (forward, l2 loss, backward, Adam). Target: ratio >= 0.95.
2. FLOP/s achieved by a training step (FLOPs counted by FlopCounterMode x bare steps/s) as a
   fraction of this machine's matmul FLOP/s (a large torch.mm).
Runs alternate between the two loops and keep each one's best, so load from other processes
on a shared machine biases neither side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from priorlab.tasks.dip import DipParams, run
from priorlab.tasks.dip.degrade import STREAM_INPUT, STREAM_WEIGHTS, corrupt, seeded
from priorlab.tasks.dip.fit import INPUT_SCALE, pick_device
from priorlab.tasks.dip.models import build_model, init_weights_
from priorlab.tasks.images import load_image
from priorlab.tasks.sink import NullSink


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_setup(p: DipParams, device: torch.device):
    clean = load_image(p.image, p.size)
    target, _ = corrupt(clean, p.task, p.sigma, None, None, p.seed)
    noise = torch.rand(1, p.input_depth, p.size, p.size, generator=seeded(p.seed, STREAM_INPUT)) * INPUT_SCALE
    model = init_weights_(build_model(p.arch, p.depth, p.width, p.input_depth, p.head), seeded(p.seed, STREAM_WEIGHTS))
    return model.to(device), noise.to(device), target.to(device)


def bare_loop(p: DipParams, device: torch.device) -> float:
    """The loop anyone would write by hand: iterations/s."""
    model, noise, target = bare_setup(p, device)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    sync(device)
    t = time.perf_counter()
    for _ in range(p.iterations):
        loss = (model(noise) - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return p.iterations / (time.perf_counter() - t)


def step_flops(p: DipParams, device: torch.device) -> int:
    model, noise, target = bare_setup(p, device)
    with FlopCounterMode(display=False) as counter:
        (model(noise) - target).square().mean().backward()
    return counter.get_total_flops()


def matmul_flops_per_s(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm up
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="seed-double")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    p = DipParams(
        arch=args.arch, depth=args.depth, width=args.width, size=args.size, iterations=args.iterations,
        log_every=args.log_every, device=args.device,
    )
    device = pick_device(p.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(f"{p.arch} depth {p.depth} width {p.width}, {p.size}px, {p.iterations} iterations x {args.rounds} rounds, "
          f"log_every {p.log_every}, snapshots {p.snapshots}")

    warm = p.model_copy(update={"iterations": 5, "snapshots": [5]})
    run(warm, NullSink())
    bare_loop(warm, device)
    fits, bares = [], []
    for r in range(args.rounds):
        fits.append(run(p, NullSink())["iters_per_s"])
        bares.append(bare_loop(p, device))
        print(f"  round {r + 1}: fit loop {fits[-1]:8.2f} it/s   bare loop {bares[-1]:8.2f} it/s")
    fit_best, bare_best = max(fits), max(bares)
    ratio = fit_best / bare_best
    print(f"1. fit loop {fit_best:.2f} it/s vs bare PyTorch {bare_best:.2f} it/s (best of {args.rounds}): "
          f"ratio {ratio:.3f} ({'meets' if ratio >= 0.95 else 'BELOW'} the 0.95 target); "
          f"ratio of medians {statistics.median(fits) / statistics.median(bares):.3f}")

    flops = step_flops(p, device)
    peak = matmul_flops_per_s(device)
    achieved = flops * fit_best
    print(f"2. one training step = {flops / 1e9:.3f} GFLOP (forward + backward); "
          f"achieved {achieved / 1e9:.2f} GFLOP/s vs torch.mm {peak / 1e9:.2f} GFLOP/s: "
          f"{100 * achieved / peak:.1f}% of matmul")


if __name__ == "__main__":
    main()
