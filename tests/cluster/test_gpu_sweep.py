"""A real GPU shared by fractional trials (issue 15): a `gpu: 0.25` sweep on embedded Ray runs 4
trials on the card at once, and a packed sweep fits its packs on it. Skips without CUDA:
`pytest -m gpu`. (The same scheduling without a GPU: test_gpu_scheduling.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from priorlab.analysis.store import Store

SWEEP = textwrap.dedent(
    """
    name: {name}
    kind: dip
    fixed: {{image: astronaut, size: 64, width: 16, depth: 2, arch: seed-double, iterations: {iterations},
            log_every: 100, snapshots: [{iterations}], device: auto}}
    grid:
      seed: [0, 1, 2, 3, 4, 5, 6, 7]
    resources: {{cpu: 1, gpu: {gpu}}}
    pack: {pack}
    """
)


def most_at_once(runs: pd.DataFrame) -> int:
    """The largest number of runs whose [started_at, finished_at] intervals overlap."""
    events = sorted([(pd.Timestamp(t), 1) for t in runs["started_at"]] + [(pd.Timestamp(t), -1) for t in runs["finished_at"]])
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


@pytest.mark.gpu
def test_quarter_gpu_trials_share_the_card_four_at_once_and_packs_fit_on_it(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    store = tmp_path / "store"
    for name, gpu, pack, iterations in (("quarter", 0.25, 1, 1500), ("packed", 0.5, 4, 300)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(SWEEP.format(name=name, gpu=gpu, pack=pack, iterations=iterations))
        done = subprocess.run([sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(store),
                               "--num-cpus", "8"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = Store(store, readonly=True).runs()
    assert len(runs) == 16 and set(runs["status"]) == {"done"}
    assert runs["device"].str.startswith("cuda").all() and set(runs["gpu_ids"].astype(str)) == {"0"}
    quarter = runs[runs["sweep"] == "quarter"]
    assert most_at_once(quarter) == 4  # four 0.25-GPU trials on the one card, never more
    packed = runs[runs["sweep"] == "packed"]
    assert set(packed["pack_size"]) == {4} and packed["pack_id"].nunique() == 2
