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


import procs
from priorlab.analysis.store import Store
from priorlab.cluster.config import load
from priorlab.cluster.expand import expand
from priorlab.cluster.sweep import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, run_sweep

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
    # A loss that passes the config check (a 16-pixel probe) and raises in the real fit: a broken
    # input file no longer gets this far (the sweep checks every input before a trial starts).
    cfg = write_config(tmp_path / "fail.yaml", "with-failure", {"seed": [0, 1]}, extra=textwrap.dedent("""
        groups:
          - {name: good}
          - {name: bad-loss, fixed: {loss: "tests.fault_plugins:raise_in_fit"}}
        """))
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "store"), echo=lines.append) == EXIT_FAILED
    runs = Store(tmp_path / "store").runs(sweep="with-failure")
    bad = runs[runs["loss"].astype(str).str.contains("raise_in_fit")]
    good = runs.drop(bad.index)
    assert (bad["status"] == "error").all() and len(bad) == 2
    assert all("Traceback" in e and "fails on purpose" in e for e in bad["error"])
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
    cmd = [sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(store_dir),
           "--address", ray_cluster.address]
    systemp = tmp_path / "systemp"  # the drivers' temp folder: a killed one must leave nothing there
    systemp.mkdir()
    env = {**os.environ, "TMPDIR": str(systemp)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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

    assert not list(systemp.glob("priorlab-tune-*")), "Tune's scratch of the killed driver was left in temp"

    out = procs.run(cmd, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not list(systemp.glob("priorlab-tune-*")) and not (store_dir / ".tune-scratch").exists()
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
            from priorlab.analysis.store import Store
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
    from priorlab.cluster.cli import main

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
    cmd = [sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(store_dir),
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
    assert "Tuner.restore" not in out  # Tune's own resume hint would mislead: priorlab resumes itself
    statuses = set(Store(store_dir).runs(sweep="ctrl-c")["status"])
    assert "interrupted" in statuses and "running" not in statuses

    again = procs.run(cmd, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_exactly_once(store_dir, cfg)


# ---- what a user sees around a sweep: refusals before anything runs, the summary, no litter ----

def test_resources_no_node_can_hold_are_refused_before_anything_runs(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.delenv("PRIORLAB_AUTOSCALING", raising=False)
    store_dir = tmp_path / "store"
    # 2 CPUs in the cluster, but 1 per node: a trial (one placement-group bundle) never fits.
    cfg = write_config(tmp_path / "big.yaml", "too-big", {"seed": [0]}, resources="{cpu: 2}")
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lines.append) == EXIT_CONFIG
    err = [l for l in lines if l.startswith("config error")]
    assert len(err) == 1 and "'dip' asks for CPU 2" in err[0] and "largest node: CPU 1" in err[0], lines
    assert "cluster total: CPU " in err[0]  # (2, or more while another test adds a node)
    assert not (store_dir / "priorlab.db").exists() or Store(store_dir).runs(sweep="too-big").empty

    cfg = write_config(tmp_path / "gpu.yaml", "no-gpu", {"seed": [0]}, resources="{cpu: 1, gpu: 1}",
                       extra="groups: [{name: fits}, {name: wants-gpu, resources: {cpu: 1, gpu: 1}}]\n")
    lines = []
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lines.append) == EXIT_CONFIG
    assert any("'fits' asks for CPU 1, GPU 1" in l and "GPU 0" in l for l in lines), lines


def test_an_autoscaling_cluster_gets_a_note_instead_of_a_refusal():
    from priorlab.cluster.sweep import check_resources

    nodes = [{"CPU": 2.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert check_resources([("a", {"CPU": 2.0, "GPU": 1.0})], nodes, autoscaling=False) == (None, None)
    error, note = check_resources([("a", {"CPU": 8.0})], nodes, autoscaling=False)
    assert "'a' asks for CPU 8" in error and "largest node: CPU 2" in error and "cluster total: CPU 4" in error
    error, note = check_resources([("a", {"CPU": 8.0})], nodes, autoscaling=True)
    assert error is None and "autoscales" in note and "waits" in note


def test_reusing_a_sweep_name_with_another_config_is_refused_unless_extended(ray_cluster, tmp_path):
    store_dir = tmp_path / "store"
    first = write_config(tmp_path / "a.yaml", "same-name", {"seed": [0]}, fixed={"iterations": 20})
    assert run_sweep(str(first), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    # The same config with a comment and keys in another order is the same sweep.
    text = first.read_text()
    import yaml

    (tmp_path / "a2.yaml").write_text("# the same sweep, reformatted\n" + yaml.safe_dump(yaml.safe_load(text),
                                                                                       default_flow_style=True))
    assert run_sweep(str(tmp_path / "a2.yaml"), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK

    changed = write_config(tmp_path / "b.yaml", "same-name", {"seed": [0, 1]}, fixed={"iterations": 20})
    lines: list[str] = []
    assert run_sweep(str(changed), store_dir=str(store_dir), echo=lines.append) == EXIT_CONFIG
    assert len(lines) == 1 and "new `name:`" in lines[0] and "--extend" in lines[0], lines
    assert len(Store(store_dir).runs(sweep="same-name")) == 1  # nothing was mixed in

    assert run_sweep(str(changed), store_dir=str(store_dir), echo=lambda s: None, extend=True) == EXIT_OK
    store = Store(store_dir)
    assert len(store.runs(sweep="same-name")) == 2
    assert changed.read_text() in store.sweep_configs("same-name") and text in store.sweep_configs("same-name")


def test_end_of_sweep_summary_is_per_kind_and_task_and_shows_stylegan_results(sweep_store):
    from priorlab.cluster.sweep import best_table

    table = best_table(Store(sweep_store), "tiny")
    heads = [l for l in table.splitlines() if not l.startswith("  ")]
    assert [h.split(":")[0] for h in heads] == ["dip denoise", "dip inpaint", "dip-baseline denoise",
                                                 "stylegan-interpolate", "stylegan-sample"], table
    body = {h.split(":")[0]: [] for h in heads}
    current = None
    for line in table.splitlines():
        if not line.startswith("  "):
            current = line.split(":")[0]
        else:
            body[current].append(line)
    assert "NaN" not in table and "None" not in table, table
    denoise_cols = body["dip denoise"][0].split()
    assert "region" not in denoise_cols and "best_psnr" in denoise_cols and "arch" in denoise_cols
    # Settings are ranked against each other on the same data (issue 18 §1.13): the inpainting
    # table compares depths within each hole size, and says so.
    inpaint_head = next(h for h in heads if h.startswith("dip inpaint"))
    assert "same region" in inpaint_head and "depth" in body["dip inpaint"][0].split()
    assert "sigma" not in body["dip inpaint"][0].split()
    assert "method" in body["dip-baseline denoise"][0].split()
    assert {"z_lerp_flip_step_mean", "w_lerp_flip_step_mean"} <= set(body["stylegan-interpolate"][0].split()), table
    assert {"n", "z_diversity", "w_diversity"} <= set(body["stylegan-sample"][0].split()), table


def test_a_sweep_leaves_nothing_in_the_temp_folder_and_no_tune_resume_hint(ray_cluster, tmp_path, monkeypatch, capfd):
    import tempfile

    tmp = tmp_path / "systemp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    store_dir = tmp_path / "store"
    # A scratch folder of a driver that was killed (its pid is gone) is removed by the next sweep.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = store_dir / ".tune-scratch" / f"tune-{int(dead.stdout)}-x"
    stale.mkdir(parents=True)
    cfg = write_config(tmp_path / "t.yaml", "no-litter", {"seed": [0]}, fixed={"iterations": 20})
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    assert not list(tmp.glob("priorlab-tune-*")) and not list(tmp.iterdir())
    assert not (store_dir / ".tune-scratch").exists()
    out, err = capfd.readouterr()
    assert "Tuner.restore" not in out + err


def test_embedded_ray_prints_no_token_auth_warning_and_keeps_token_auth_on(tmp_path):
    code = ("import os\nfrom priorlab.cluster.runtime import connect\nprint(connect(num_cpus=1))\n"
            "print('auth mode', os.environ.get('RAY_AUTH_MODE'))\nimport ray; ray.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    out = procs.run([sys.executable, "-c", code], timeout=120, env=env,
                         cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    assert "started embedded" in out.stdout and "auth mode token" in out.stdout
    assert "Token authentication" not in out.stdout + out.stderr, out.stderr
