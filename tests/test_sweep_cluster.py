"""Sweeps over a real two-node Ray cluster: every result lands in the store exactly once,
through crashes, node loss and failing trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path


from analysis.store import Store
from cluster.config import expand, load
from cluster.sweep import EXIT_FAILED, EXIT_OK, run_sweep

TINY = {"image": "astronaut", "size": 16, "width": 4, "depth": 1, "log_every": 5, "snapshots": [10]}


def write_config(path: Path, name: str, grid: dict, fixed: dict | None = None, resources: str = "{cpu: 1, custom: {slot: 1}}",
                 retries: int = 0, extra: str = "") -> Path:
    import yaml

    body = {"name": name, "kind": "dip", "fixed": {**TINY, "iterations": 10, **(fixed or {})}, "grid": grid}
    path.write_text(yaml.safe_dump(body) + f"resources: {resources}\nretries: {retries}\n" + extra)
    return path


def assert_exactly_once(store_dir: Path, cfg_path: Path):
    cfg, _ = load(cfg_path)
    ids = {t["run_id"] for t in expand(cfg)}
    store = Store(store_dir)
    runs = store.runs(sweep=cfg.name)
    assert set(runs["run_id"]) == ids and len(runs) == len(ids)
    assert (runs["status"] == "done").all(), runs[["run_id", "status", "error"]]
    m = store.metrics(list(ids))
    assert not m.duplicated(["run_id", "step", "name"]).any()
    assert set(m["run_id"]) == ids
    a = store.artifacts(list(ids))
    assert set(a["run_id"]) == ids
    assert {"clean", "corrupted", "output"} <= set(a["name"])
    return runs


def test_sweep_over_two_nodes_stores_every_run_once(ray_cluster, tmp_path):
    # Each group's custom resource exists on one node only, so both nodes must run trials.
    cfg = write_config(tmp_path / "two.yaml", "two-nodes", {"seed": [0, 1, 2, 3, 4, 5]}, extra=textwrap.dedent("""
        groups:
          - {name: on-head, fixed: {loss: l1}, resources: {cpu: 1, custom: {head: 1}}}
          - {name: on-worker, fixed: {loss: l2}, resources: {cpu: 1, custom: {worker: 1}}}
        """))
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "store"), echo=lambda s: None) == EXIT_OK
    runs = assert_exactly_once(tmp_path / "store", cfg)
    head_id = ray_cluster.head_node.node_id
    worker_id = ray_cluster.extra_worker.node_id
    node_of = dict(zip(runs["run_id"], runs["node"]))
    for t in expand(load(cfg)[0]):
        want = head_id if t["params"]["loss"] == "l1" else worker_id
        assert node_of[t["run_id"]] == want
    # A second run of the same command finds everything done and runs nothing.
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "store"), echo=lines.append) == EXIT_OK
    assert any("12 already done, 0 to run" in l for l in lines), lines


def test_failing_trial_is_recorded_with_traceback_and_others_finish(ray_cluster, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")  # passes validation (the file exists), fails to decode
    cfg = write_config(tmp_path / "fail.yaml", "with-failure", {"image": ["astronaut", str(broken)], "seed": [0, 1]})
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "store"), echo=lines.append) == EXIT_FAILED
    runs = Store(tmp_path / "store").runs(sweep="with-failure")
    bad = runs[runs["image"] == str(broken)]
    good = runs[runs["image"] == "astronaut"]
    assert (bad["status"] == "error").all() and len(bad) == 2
    assert all("Traceback" in e and "cannot identify image" in e for e in bad["error"])
    assert (good["status"] == "done").all() and len(good) == 2
    assert any("error in" in l for l in lines)


def test_worker_node_lost_mid_sweep_trials_retry_on_the_rest(ray_cluster, tmp_path):
    victim = ray_cluster.add_node(num_cpus=1, resources={"slot": 2, "victim": 1})
    ray_cluster.wait_for_nodes()
    cfg = write_config(tmp_path / "loss.yaml", "node-loss", {"seed": list(range(6))}, fixed={"iterations": 150},
                       retries=3)
    store_dir = tmp_path / "store"
    removed = threading.Event()

    def remove_when_busy():
        deadline = time.time() + 120
        while time.time() < deadline and not removed.is_set():
            if (store_dir / "priorlab.db").exists():
                runs = Store(store_dir).runs(sweep="node-loss")
                if ((runs["node"] == victim.node_id) & (runs["status"] == "running")).any():
                    ray_cluster.remove_node(victim)
                    removed.set()
                    return
            time.sleep(0.2)

    t = threading.Thread(target=remove_when_busy, daemon=True)
    t.start()
    status = run_sweep(str(cfg), store_dir=str(store_dir), echo=lambda s: None)
    t.join(timeout=5)
    assert removed.is_set(), "the victim node never ran a trial"
    assert status == EXIT_OK
    runs = assert_exactly_once(store_dir, cfg)
    assert victim.node_id not in set(runs["node"])  # every run finished on a surviving node


def test_killed_driver_resumes_without_rerunning_or_duplicating(ray_cluster, tmp_path):
    cfg = write_config(tmp_path / "resume.yaml", "resume", {"seed": list(range(8))}, fixed={"iterations": 60})
    store_dir = tmp_path / "store"
    cmd = [sys.executable, "-m", "cluster.cli", "sweep", str(cfg), "--store", str(store_dir),
           "--address", ray_cluster.address]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        done_before: dict[str, float] = {}
        while time.time() < deadline:
            if (store_dir / "priorlab.db").exists():
                runs = Store(store_dir).runs(sweep="resume")
                done = runs[runs["status"] == "done"]
                if 2 <= len(done) < len(runs):
                    done_before = dict(zip(done["run_id"], done["finished_at"]))
                    break
            time.sleep(0.1)
        assert done_before, "the sweep never got part way"
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
    finally:
        proc.wait(timeout=30)
    # The unfinished runs were left pending/running by the dead driver.
    left = Store(store_dir).runs(sweep="resume")
    assert (left["status"] != "done").any()

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = assert_exactly_once(store_dir, cfg)
    after = dict(zip(runs["run_id"], runs["finished_at"]))
    assert all(after[r] == t for r, t in done_before.items()), "a completed run was rerun"
    assert f"{len(done_before)} already done" in out.stdout or "already done" in out.stdout


def test_second_process_reads_while_the_sweep_writes(ray_cluster, tmp_path):
    cfg = write_config(tmp_path / "read.yaml", "concurrent-read", {"seed": list(range(6))}, fixed={"iterations": 60})
    store_dir = tmp_path / "store"
    Store(store_dir)  # exists before the reader starts
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from analysis.store import Store
            s = Store({str(store_dir)!r}); reads = errors = 0; t = time.time()
            while time.time() - t < 25:
                try:
                    r = s.runs(); m = s.metrics(list(r["run_id"])[:6]); s.counts(); reads += 1
                    if len(r) and (r["status"] == "done").all() and len(r) == 6: break
                except Exception as e:
                    errors += 1; print("read error:", repr(e), file=sys.stderr)
                time.sleep(0.02)
            print(reads, errors)
        """)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd(),
    )
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    out, err = reader.communicate(timeout=60)
    reads, errors = map(int, out.split())
    assert errors == 0, err
    assert reads > 5


def test_runs_cli_lists_and_exports(sweep_store, tmp_path):
    from cluster.cli import main

    assert main(["runs", "--store", str(sweep_store), "--format", "csv", "--out", str(tmp_path / "r.csv")]) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "r.csv")
    runs = Store(sweep_store).runs()
    assert len(df) == len(runs) and {"run_id", "sweep", "kind", "status", "arch", "best_psnr"} <= set(df.columns)
    assert main(["runs", "--store", str(sweep_store), "--format", "parquet", "--out", str(tmp_path / "r.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == len(runs)


def test_ctrl_c_marks_running_runs_interrupted_and_the_same_command_resumes(ray_cluster, tmp_path):
    cfg = write_config(tmp_path / "int.yaml", "ctrl-c", {"seed": list(range(8))}, fixed={"iterations": 60})
    store_dir = tmp_path / "store"
    cmd = [sys.executable, "-m", "cluster.cli", "sweep", str(cfg), "--store", str(store_dir),
           "--address", ray_cluster.address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if (store_dir / "priorlab.db").exists():
            runs = Store(store_dir).runs(sweep="ctrl-c")
            if (runs["status"] == "done").sum() >= 1 and (runs["status"] == "running").any():
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    statuses = set(Store(store_dir).runs(sweep="ctrl-c")["status"])
    assert "interrupted" in statuses and "running" not in statuses

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_exactly_once(store_dir, cfg)
