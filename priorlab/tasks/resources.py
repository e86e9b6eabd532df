"""What a run cost: its wall time and its own peak memory (resident, and CUDA on a GPU).

`measure()` is a context manager around one run; `measured(fn)` wraps a kind's run function so
that every kind (registry.py) records the same keys without retyping them. Its result holds:

- `vocab.WALL_S`: seconds the run took (a task's own, narrower `wall_s` is kept when it has one);
- `vocab.PEAK_RSS_MB`: the highest resident memory of the process while the run ran, in MiB;
- `vocab.PEAK_GPU_MB`: the highest CUDA memory PyTorch's allocator held for tensors during the
  run (all visible devices together), in MiB; absent when the run did not touch CUDA.

Why a sampler and not `getrusage`: `ru_maxrss` is the process's lifetime peak, so the second
run in a long-lived Ray worker would inherit the first one's peak. Resetting the kernel's high
water mark (`/proc/self/clear_refs`, "5") would be exact but is process-wide and not allowed in
every container, and it would also reset the peak Ray's own monitors read. So a daemon thread
reads the current resident size from /proc/self/statm every `INTERVAL_S` (about 20 µs a read);
the peak is the largest reading. A spike shorter than the interval can slip between readings,
so when the process's lifetime peak (`ru_maxrss`) rose during the run, the new peak was set by
this run and is taken as exact. Where /proc is missing (macOS) only that second rule applies.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import sys
import threading
import time
from typing import Any, Callable, Iterator

from priorlab import vocab

INTERVAL_S = 0.05
MIB = 1024 * 1024
_STATM = "/proc/self/statm"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """The process's resident memory now; None where /proc is not there."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _lifetime_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="priorlab-rss-sampler", daemon=True)
        self.peak = rss_bytes() or 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(INTERVAL_S):
            now = rss_bytes()
            if now is None:
                return
            self.peak = max(self.peak, now)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, rss_bytes() or 0)


def _cuda_started() -> bool:
    # Only a process that already uses CUDA is asked: calling into torch.cuda here would create a
    # CUDA context (hundreds of MiB, seconds) for a CPU run on a GPU machine. torch is imported
    # by every task anyway; a process without it has no CUDA memory to report.
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


def _cuda_reset() -> None:
    import torch

    for i in range(torch.cuda.device_count()):
        torch.cuda.reset_peak_memory_stats(i)


def _cuda_peak_bytes() -> int:
    import torch

    return sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))


@contextlib.contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Measure the block; the yielded dict is filled in when it ends (also when it raises)."""
    out: dict[str, Any] = {}
    sampler = _Sampler()
    lifetime_before = _lifetime_peak_bytes()
    if _cuda_started():
        _cuda_reset()  # a CUDA context made during the block starts with fresh statistics itself
    sampler.start()
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out[vocab.WALL_S] = time.perf_counter() - t0
        peak = sampler.stop()
        lifetime = _lifetime_peak_bytes()
        if lifetime > lifetime_before:  # the process's peak was reached during this block
            peak = max(peak, lifetime)
        out[vocab.PEAK_RSS_MB] = peak / MIB
        if _cuda_started():
            out[vocab.PEAK_GPU_MB] = _cuda_peak_bytes() / MIB


def add_to(summary: dict, used: dict[str, Any]) -> dict:
    """`summary` with the resource keys of `used`. A wall time the task measured itself is kept:
    a pack member's ends when that member stopped, not when the pack did."""
    for k, v in used.items():
        if k == vocab.WALL_S and summary.get(k) is not None:
            continue
        if k == vocab.PEAK_GPU_MB and not str(summary.get("device", "cuda")).startswith("cuda"):
            continue  # a CPU run in a worker whose earlier run used CUDA: its tensors are not this run's
        summary[k] = v
    return summary


def measured(fn: Callable[..., dict]) -> Callable[..., dict]:
    """`fn` (a kind's `run(params, sink)` or a sharded kind's `finish`) with its resource use
    added to the summary it returns."""

    @functools.wraps(fn)
    def run(*args, **kwargs) -> dict:
        with measure() as used:
            summary = fn(*args, **kwargs)
        return add_to(summary, used)

    return run
