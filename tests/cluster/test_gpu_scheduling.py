"""GPU scheduling proven on a machine without a GPU, with Ray's own resource model.

A separate Ray instance in a subprocess declares 2 GPUs that have no CUDA behind them (so
it cannot fight the session's `ray_cluster`). On it the real sweep code runs
  - a `gpu: 0.25` sweep of 8 DIP runs: 4 trials share each declared GPU at once, every
    trial records the GPU id Ray assigned it (`gpu_ids` in its summary), and `device: auto`
    falls back to the CPU, since torch sees no CUDA device behind Ray's CUDA_VISIBLE_DEVICES;
  - a `pack: 4, gpu: 1` sweep of the same 8 runs: 2 packs, each holding a whole GPU of its own.

The CUDA paths themselves (device placement, amp, channels_last, a packed fit on cuda) run
in the tests marked `gpu`, which skip only when CUDA is absent: `pytest -m gpu`.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

import procs

from priorlab.analysis.store import Store

ROOT = Path(__file__).resolve().parents[2]

SWEEP = """
name: {name}
kind: dip
fixed: {{image: astronaut, size: 32, width: 8, depth: 1, arch: seed-single,
        iterations: 20, log_every: 10, snapshots: [20], device: auto}}
grid:
  seed: [0, 1, 2, 3]
  sigma: [0.1, 0.3]
resources: {resources}
"""

DRIVER = """
import sys, time, ray

@ray.remote(num_cpus=0)
class Inside:
    # How many trials are inside the task right now, and the most there ever were.
    def __init__(self):
        self.now = self.peak = 0
    def enter(self):
        self.now += 1
        self.peak = max(self.peak, self.now)
    def leave(self):
        self.now -= 1
    def peak_seen(self):
        return self.peak

def barrier_hook():
    # Runs in every Ray worker: the dip task first waits (up to 120 s) until WANT trials are
    # inside at once, so concurrency is shown by Ray's scheduling, not by a race of timings.
    import dataclasses
    from priorlab.tasks import registry
    kind = registry.KINDS["dip"]
    def run(params, sink):
        inside = ray.get_actor("inside")
        ray.get(inside.enter.remote())
        deadline = time.monotonic() + 120
        while ray.get(inside.peak_seen.remote()) < WANT and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            return kind.run(params, sink)
        finally:
            ray.get(inside.leave.remote())
    registry.KINDS["dip"] = dataclasses.replace(kind, run=run)

WANT = 8
# 8 logical CPUs so that CPU is never what limits the GPU sharing; 2 declared GPUs.
ray.init(address="local", num_cpus=8, num_gpus=2, include_dashboard=False, log_to_driver=False,
         runtime_env={"worker_process_setup_hook": barrier_hook})
inside = Inside.options(name="inside").remote()
cfg, store = sys.argv[1], sys.argv[2]
from priorlab.cluster.sweep import run_sweep
code = run_sweep(cfg, store_dir=store, echo=lambda s: print(s, flush=True))
print("peak trials inside the task at once:", ray.get(inside.peak_seen.remote()), flush=True)
ray.kill(inside)
# The packed sweep (2 packs, one whole GPU each) runs through tasks.dip.pack: no barrier.
code = max(code, run_sweep(sys.argv[3], store_dir=sys.argv[4], echo=lambda s: print(s, flush=True)))
ray.shutdown()
sys.exit(code)
"""


@pytest.fixture(scope="module")
def gpu_sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-sweeps")
    shared = root / "shared.yaml"
    shared.write_text(SWEEP.format(name="gpu-shared", resources="{cpu: 1, gpu: 0.25}"))
    packed = root / "packed.yaml"
    packed.write_text(SWEEP.format(name="gpu-packed", resources="{cpu: 1, gpu: 1}") + "pack: 4\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = procs.run(
        [sys.executable, "-c", DRIVER, str(shared), str(root / "shared"), str(packed), str(root / "packed")],
        env=env, timeout=600, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Store(root / "shared").runs(), Store(root / "packed").runs(), proc.stdout


def test_quarter_gpu_trials_share_each_declared_gpu_four_at_a_time(gpu_sweeps):
    runs, _, out = gpu_sweeps
    assert len(runs) == 8 and set(runs["status"]) == {"done"}
    # Every trial got a GPU from Ray, and each of the 2 GPUs was given to 4 trials.
    assert runs["gpu_ids"].value_counts().to_dict() == {"0": 4, "1": 4}
    # ... at the same time: 8 trials with 0.25 GPU each were inside the task together.
    assert "peak trials inside the task at once: 8" in out
    # No CUDA behind the declared GPUs: device auto fell back to the CPU and the runs finished.
    assert set(runs["summary_device"]) == {"cpu"}  # (the param `device` is "auto")


def test_packs_ask_for_whole_gpus_as_configured(gpu_sweeps):
    _, runs, out = gpu_sweeps
    assert "8 runs packed into 2 trials (pack: 4)" in out
    assert len(runs) == 8 and set(runs["status"]) == {"done"} and set(runs["pack_size"]) == {4}
    by_pack = runs.groupby("pack_id")["gpu_ids"].agg(set)
    assert len(by_pack) == 2
    # Each pack holds one whole GPU: its members share one id, and the two packs differ.
    assert sorted(next(iter(ids)) for ids in by_pack) == ["0", "1"] and all(len(ids) == 1 for ids in by_pack)
    assert set(runs["summary_device"]) == {"cpu"}  # (the param `device` is "auto")


def test_plan_counts_fractional_and_whole_gpu_packs():
    from priorlab.cluster.packing import at_once

    two_gpus = [{"CPU": 8, "GPU": 2}]
    assert at_once(two_gpus, {"CPU": 1, "GPU": 0.25}) == 8
    assert at_once(two_gpus, {"CPU": 1, "GPU": 1}) == 2
    assert at_once([{"CPU": 2, "GPU": 0}], {"CPU": 1, "GPU": 0.5}) == 0
    assert at_once([{"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1}], {"CPU": 1, "GPU": 0.5}) == 4  # per node


# ---- CUDA itself: these run where a GPU is (`pytest -m gpu`) and skip only without CUDA ----

def _cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


TINY = dict(size=32, width=8, depth=2, iterations=40, log_every=10, snapshots=[40])


@pytest.mark.gpu
def test_device_auto_places_the_fit_on_cuda():
    _cuda()
    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.sink import MemorySink

    summary = run(DipParams(**TINY, device="auto"), MemorySink())
    assert summary["device"].startswith("cuda") and summary["status"] == "done"


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["seed-double", "skip"])
def test_amp_and_channels_last_fit_on_cuda(arch):
    _cuda()
    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.sink import MemorySink

    plain = run(DipParams(**TINY, arch=arch, device="cuda"), MemorySink())
    fast = run(DipParams(**TINY, arch=arch, device="cuda", amp=True, channels_last=True), MemorySink())
    assert fast["status"] == "done" and fast["device"].startswith("cuda")
    assert abs(fast["best_psnr"] - plain["best_psnr"]) < 1.0  # bf16: close, not equal


@pytest.mark.gpu
def test_packed_fit_on_cuda_matches_unpacked_runs():
    _cuda()
    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.dip.pack import run_pack
    from priorlab.tasks.sink import MemorySink

    variants = (dict(seed=0), dict(seed=1, sigma=0.3), dict(loss="l1", lr=0.005))
    params = [DipParams(**TINY, device="cuda", **m) for m in variants]
    sinks = [MemorySink() for _ in params]
    summaries = run_pack(params, sinks, pack_id="cuda")
    for p, sink, summary in zip(params, sinks, summaries):
        alone = MemorySink()
        run(p, alone)
        assert summary["device"].startswith("cuda")
        for (step, a), (_, b) in zip(sink.series("psnr"), alone.series("psnr"), strict=True):
            assert abs(a - b) < 0.05, step
