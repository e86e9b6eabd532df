"""The measurements of the GPU proof kit (`gpu_kit.py`, `make gpu-check`), one function per table.

Each returns rows `{"bench", "case", "value", "unit", "ref", "ratio", "peak_mb"}`: `value` is
priorlab's number, `ref` what it is compared with (a plain PyTorch loop, sequential runs),
`ratio` = value / ref, `peak_mb` the peak GPU memory of the measurement (None on the CPU).
Every function also runs on the CPU at tiny sizes (`tiny=True`), which is how CI keeps the kit
working on machines without a GPU.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from priorlab.tasks.dip import DipParams, run
from priorlab.tasks.dip.degrade import STREAM_INPUT, STREAM_WEIGHTS, corrupt, seeded
from priorlab.tasks.dip.fit import INPUT_SCALE
from priorlab.tasks.dip.models import build_model, init_weights_
from priorlab.tasks.dip.pack import run_pack
from priorlab.tasks.images import load_image
from priorlab.tasks.sink import NullSink


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Peak:
    """Peak GPU memory (MB) allocated inside the block; None on the CPU."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, None

    def __enter__(self) -> "Peak":
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def row(bench: str, case: str, value: float, unit: str, ref: float | None = None, peak_mb: float | None = None):
    return {"bench": bench, "case": case, "value": value, "unit": unit, "ref": ref,
            "ratio": (value / ref) if ref else None, "peak_mb": peak_mb}


# ---- 1. DIP: priorlab's loop vs the loop anyone would write, same network ----------------

def plain_loop(p: DipParams, device: torch.device, iterations: int) -> float:
    """A plain PyTorch DIP loop (forward, l2, backward, Adam) with the same amp/channels_last: it/s."""
    clean = load_image(p.image, p.size)
    target, _ = corrupt(clean, p.task, p.sigma, None, None, p.seed)
    noise = torch.rand(1, p.input_depth, p.size, p.size, generator=seeded(p.seed, STREAM_INPUT)) * INPUT_SCALE
    model = init_weights_(build_model(p.arch, p.depth, p.width, p.input_depth, p.head), seeded(p.seed, STREAM_WEIGHTS))
    fmt = torch.channels_last if (p.channels_last and device.type == "cuda") else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    noise, target = noise.to(device, memory_format=fmt), target.to(device, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (p.amp and device.type == "cuda") else nullcontext()

    def step():
        with amp:
            out = model(noise)
        loss = (out.float() - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up: cuDNN autotuning, allocator
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(iterations):
        step()
    sync(device)
    return iterations / (time.perf_counter() - t)


def priorlab_loop(p: DipParams) -> float:
    """priorlab's own fit (metrics, detectors, logging every `log_every`): its loop's it/s."""
    run(p.model_copy(update={"iterations": 3, "snapshots": [3]}), NullSink())  # warm-up
    return run(p, NullSink())["iters_per_s"]


def dip_vs_plain(device: torch.device, tiny: bool = False) -> list[dict]:
    """The DIP paper's skip net (depth 5, width 128) at 256 and 512 px, amp and channels_last
    on and off, plus `compile: true`; the best of `rounds` alternating measurements each."""
    sizes, depth, width, iters, rounds = ((32,), 2, 8, 6, 1) if tiny else ((256, 512), 5, 128, 100, 2)
    rows = []
    for size in sizes:
        for amp, cl, comp in ((False, False, False), (True, False, False), (False, True, False), (True, True, False),
                              (False, False, True)):
            p = DipParams(arch="skip", depth=depth, width=width, size=size, iterations=iters, log_every=50,
                          snapshots=[iters], device=str(device), amp=amp, channels_last=cl, compile=comp)
            mine, plain = [], []
            with Peak(device) as peak:
                for _ in range(rounds):
                    mine.append(priorlab_loop(p))
                    plain.append(plain_loop(p, device, iters))
            case = f"skip {size}px amp={'on' if amp else 'off'} channels_last={'on' if cl else 'off'}"
            case += " compile=on (warm-up included)" if comp else ""
            rows.append(row("DIP it/s vs plain loop", case, max(mine), "it/s", max(plain), peak.mb))
    return rows


# ---- 2. Packing: K same-shaped nets in one vmapped model vs K runs one after another ------

def packed_speedup(device: torch.device, tiny: bool = False) -> list[dict]:
    ks, size, width, depth, iters = ((1, 2), 32, 8, 2, 4) if tiny else ((1, 4, 16, 64), 128, 64, 4, 60)
    base = dict(arch="skip", depth=depth, width=width, size=size, iterations=iters, log_every=iters,
                snapshots=[iters], device=str(device), detectors="none")
    one = DipParams(**base)
    run(one.model_copy(update={"iterations": 2, "snapshots": [2]}), NullSink())  # warm-up
    single = run(one, NullSink())["iters_per_s"]  # sequential: K runs at this rate, one after another
    rows = []
    for k in ks:
        params = [DipParams(**base, seed=i, sigma=0.05 + 0.05 * (i % 8)) for i in range(k)]
        with Peak(device) as peak:
            summaries = run_pack(params, [NullSink() for _ in params], pack_id="bench")
        member_its = k * summaries[0]["iters_per_s"]
        rows.append(row("packed DIP vs sequential", f"K={k} skip width {width} {size}px", member_its,
                        "member-it/s", single, peak.mb))
    return rows


# ---- 3. StyleGAN2 sampling ------------------------------------------------------------------

def stylegan_sampling(device: torch.device, tiny: bool = False) -> list[dict]:
    """images/s of a config-f sized generator (1024 px, 512-dim latents; random weights, which
    cost the same as FFHQ's) at batch 1, 8, 32: mapping + synthesis, constant noise."""
    from priorlab.tasks.stylegan.networks import Generator, GeneratorConfig

    if tiny:
        cfg, batches, reps = GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, channel_max=16,
                                             mapping_layers=2), (1, 2), 1
    else:
        cfg, batches, reps = GeneratorConfig(), (1, 8, 32), 5
    G = Generator(cfg).to(device).eval().requires_grad_(False)
    gen = torch.Generator(device="cpu").manual_seed(0)
    rows = []
    for b in batches:
        z = torch.randn(b, cfg.z_dim, generator=gen).to(device)
        with Peak(device) as peak, torch.no_grad():
            G(z, noise_mode="const")  # warm-up
            sync(device)
            t = time.perf_counter()
            for _ in range(reps):
                G(z, noise_mode="const")
            sync(device)
            rate = b * reps / (time.perf_counter() - t)
        rows.append(row("StyleGAN2 sampling", f"{cfg.img_resolution}px batch {b}", rate, "images/s", None, peak.mb))
    return rows


BENCHES = {"dip": dip_vs_plain, "packed": packed_speedup, "stylegan": stylegan_sampling}
