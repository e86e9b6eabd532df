"""Sweeps sharing a store never take over each other's live runs, and a write the store could
not make fails the run and the sweep (issue 16, items 1 and 2)."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

from priorlab.analysis import claims
from priorlab.analysis.check import check_store
from priorlab.analysis.store import Store
from priorlab.cluster.config import load
from priorlab.cluster.expand import expand
from priorlab.cluster.sweep import EXIT_FAILED, EXIT_OK, run_sweep

TINY_DIP = textwrap.dedent("""
    name: {name}
    kind: dip
    fixed: {{image: astronaut, size: 16, width: 4, depth: 1, iterations: 10, log_every: 5, snapshots: [10]}}
    grid: {{seed: [0, 1]}}
    resources: {{cpu: 1, custom: {{slot: 1}}}}
    """)


def _config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY_DIP.format(name=name))
    return path


def test_a_second_sweep_waits_for_a_run_another_live_sweep_is_running(ray_cluster, tmp_path):
    store_dir = tmp_path / "store"
    cfg = _config(tmp_path, "b")
    first, other = [t["run_id"] for t in expand(load(cfg)[0])]
    store = Store(store_dir)
    # Sweep A (this test, alive) is part-way through `first`: claimed, some rows written.
    a = claims.owner_id("sweep-a")
    store.register_runs("a", [{"run_id": t["run_id"], "kind": t["kind"], "params": t["params"]}
                              for t in expand(load(cfg)[0])[:1]])
    assert store.start_run(first, node="a-node", owner=a)
    store.log_metrics(first, 5, {"psnr": 10.0})
    store.log_artifact(first, 5, "output", Store_png())

    def sweep_a_finishes():  # once B has run its other run, A finishes its own
        deadline = time.time() + 120
        while time.time() < deadline and store.run_status([other]).get(other) != "done":
            time.sleep(0.2)
        time.sleep(3)  # B's trial for `first` is waiting now
        store.log_metrics(first, 10, {"psnr": 12.0})
        store.finish_run(first, "done", {"best_psnr": 12.0}, owner=a, sent=(2, 1))

    finisher = threading.Thread(target=sweep_a_finishes)
    finisher.start()
    lines: list[str] = []
    status = run_sweep(str(cfg), store_dir=str(store_dir), echo=lines.append)
    finisher.join()
    assert status == EXIT_OK, "\n".join(lines)
    run = store.runs().set_index("run_id")
    assert run.loc[first, "status"] == "done" and run.loc[first, "node"] == "a-node"
    assert run.loc[first, "attempts"] == 1 and run.loc[first, "best_psnr"] == 12.0
    assert store.metrics([first])["step"].tolist() == [5, 10] and len(store.artifacts([first])) == 1
    assert run.loc[other, "status"] == "done"
    assert check_store(store_dir).clean


def test_a_killed_drivers_running_run_is_rerun(ray_cluster, tmp_path):
    store_dir = tmp_path / "store"
    cfg = _config(tmp_path, "c")
    first = expand(load(cfg)[0])[0]
    store = Store(store_dir)
    store.register_runs("old", [first])
    proc_gone = f"{claims.owner_id().split(':')[0]}:{_dead_pid()}:x"
    assert store.start_run(first["run_id"], owner=proc_gone)
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    run = store.runs().set_index("run_id").loc[first["run_id"]]
    assert run["status"] == "done" and run["attempts"] == 2


def test_unwritable_artifacts_fail_the_runs_and_the_sweep(ray_cluster, tmp_path):
    store_dir = tmp_path / "store"
    Store(store_dir).close()
    (store_dir / "artifacts").write_text("not a folder")  # every image write fails
    lines: list[str] = []
    status = run_sweep(str(_config(tmp_path, "d")), store_dir=str(store_dir), echo=lines.append)
    out = "\n".join(lines)
    assert status == EXIT_FAILED, out
    runs = Store(store_dir, readonly=True).runs(sweep="d")
    assert runs["status"].tolist() == ["error", "error"], out
    assert all("artifacts" in e for e in runs["error"]), runs["error"].tolist()
    assert "error in" in out


def Store_png() -> bytes:
    import numpy as np
    from synthetic import encode_png

    return encode_png(np.zeros((8, 8, 3), dtype=np.uint8))


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
