"""Issue 18: every run's summary says what it cost (wall time, its own peak memory), also the
second run of a long-lived process (a Ray worker runs many), and `priorlab runs` shows it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from priorlab import vocab
from priorlab.cluster.cli import main
from priorlab.cluster.writer import StoreWriter
from priorlab.tasks import resources
from priorlab.tasks.dip import DipParams
from priorlab.tasks.dip.pack import run_pack
from priorlab.tasks.registry import KINDS
from priorlab.tasks.sink import MemorySink

BIG_MB = 192


def _allocating(params, sink) -> dict:
    block = np.ones(BIG_MB * resources.MIB, dtype=np.uint8)  # touched: resident, not just reserved
    # Held for a few sampling intervals, as a real run holds its memory: once the process's
    # lifetime peak is above it, a spike shorter than one interval can fall between readings.
    time.sleep(4 * resources.INTERVAL_S)
    return {"status": "done", "sum": int(block[:: 4096].sum())}


def _idle(params, sink) -> dict:
    return {"status": "done"}


@pytest.mark.skipif(resources.rss_bytes() is None, reason="needs /proc (Linux)")
def test_a_later_run_in_the_same_process_reports_its_own_peak():
    big = resources.measured(_allocating)(None, None)
    small = resources.measured(_idle)(None, None)
    big_again = resources.measured(_allocating)(None, None)  # after the lifetime peak is set
    assert big[vocab.PEAK_RSS_MB] > 0 and small[vocab.PEAK_RSS_MB] > 0
    # ru_maxrss would give the idle run the big run's peak; its own is far below it.
    assert small[vocab.PEAK_RSS_MB] < big[vocab.PEAK_RSS_MB] - BIG_MB / 2, (small, big)
    assert big_again[vocab.PEAK_RSS_MB] > small[vocab.PEAK_RSS_MB] + BIG_MB / 2, (small, big_again)
    for s in (big, small):
        assert s[vocab.WALL_S] >= 0 and vocab.PEAK_GPU_MB not in s  # no CUDA in this process's runs


def test_measure_fills_in_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with resources.measure() as used:
            raise RuntimeError("boom")
    assert used[vocab.WALL_S] >= 0 and used[vocab.PEAK_RSS_MB] > 0


def test_a_task_keeps_its_own_wall_time():
    out = resources.add_to({vocab.WALL_S: 1.5, "device": "cpu"}, {vocab.WALL_S: 2.0, vocab.PEAK_RSS_MB: 10.0,
                                                                  vocab.PEAK_GPU_MB: 3.0})
    assert out == {vocab.WALL_S: 1.5, "device": "cpu", vocab.PEAK_RSS_MB: 10.0}  # a CPU run has no GPU peak


def test_every_kind_is_measured_through_the_registry():
    small = dict(image="astronaut", size=32, width=8, depth=1, iterations=10, log_every=5)
    dip = KINDS[vocab.DIP].run(DipParams(**small), MemorySink())
    assert dip[vocab.PEAK_RSS_MB] > 0 and dip[vocab.WALL_S] > 0 and dip[vocab.ITERS_PER_S] > 0
    kind = KINDS[vocab.SG_SAMPLE]
    sg = kind.run(kind.params(generator="random:16", n=4, batch_size=4), MemorySink())
    assert sg[vocab.PEAK_RSS_MB] > 0 and sg[vocab.WALL_S] > 0
    assert all(k.run.__wrapped__ is not None for k in KINDS.values())  # resources.measured on each


def test_packed_members_carry_the_packs_peak():
    ps = [DipParams(image="astronaut", size=32, width=8, depth=1, iterations=10, log_every=5, seed=s) for s in (0, 1)]
    out = run_pack(ps, [MemorySink(), MemorySink()], pack_id="p")
    assert out[0][vocab.PEAK_RSS_MB] == out[1][vocab.PEAK_RSS_MB] > 0
    assert all(s[vocab.WALL_S] > 0 and s[vocab.ITERS_PER_S] > 0 for s in out)


def test_priorlab_runs_shows_peak_memory(tmp_path, capsys):
    w = StoreWriter(str(tmp_path / "s"))
    w.upsert_sweep("sw", "kind: dip\n", "host")
    runs = [{"run_id": f"r{i}", "kind": "dip", "params": {"image": "astronaut", "seed": i}} for i in range(2)]
    w.register_runs("sw", runs)
    for i, r in enumerate(runs):
        w.start_run(r["run_id"], "node-a")
        w.finish_run(r["run_id"], "done", {"best_psnr": 25.0 + i, vocab.WALL_S: 12.5, vocab.ITERS_PER_S: 80.0,
                                           vocab.PEAK_RSS_MB: 812.25 + i}, None)
    w.flush()  # the writer commits in groups; a sweep flushes before it reads, as here
    assert main(["runs", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert {vocab.WALL_S, vocab.ITERS_PER_S, vocab.PEAK_RSS_MB} <= set(header), out
    assert vocab.PEAK_GPU_MB not in header  # no run has one: no empty column
    assert "812.2" in out and "813.2" in out
