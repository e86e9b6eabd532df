"""A real two-node cluster where the worker node cannot see the driver's files (issue 15).

On one machine every process can read every path, so a test of "the files travel through Ray"
would pass even if they did not. Here the worker node is a `ray start` in its own mount
namespace (`unshare --mount`) with an empty tmpfs over the driver's folder: the config, the
generator, the classifier, the normals and the identity model are really absent there, as on
a second machine. Each node has its own temp dir. A StyleGAN sweep whose files exist only on
the driver runs every job kind on each node (a per-group custom resource pins each seed to
one node) and finishes `done`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import procs
import torch
import yaml

from priorlab.analysis.store import Store

from test_inputs import small_generator, torchscript_classifier

RAY = str(Path(sys.executable).with_name("ray"))
REPO = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.slow


def _can_unshare() -> bool:
    if not shutil.which("unshare") or not Path(RAY).exists():
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """End a node we started: its own process group, by id (never `ray stop`, which ends every
    Ray on the machine)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class MeanColour(torch.nn.Module):
    """An identity embedder for the test: (N, 3, H, W) -> (N, 3) mean colours."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def _config(folder: Path) -> dict:
    """Every StyleGAN job kind twice: seed 0 on the head, seed 1 on the worker node."""
    small_generator(folder / "g.pt")
    torchscript_classifier(folder / "red.pt")
    torch.jit.script(MeanColour()).save(str(folder / "id.pt"))
    rng = np.random.default_rng(0)
    np.savez(folder / "n.npz", z=rng.normal(size=16).astype(np.float32), w=rng.normal(size=16).astype(np.float32))
    jobs = {
        "stylegan-sample": {"n": 2},
        "stylegan-interpolate": {"pairs": 1, "steps": 3, "pool": 8},
        "stylegan-direction": {"n_samples": 64, "keep_fraction": 0.5, "n_shards": 2},
        "stylegan-traverse": {"n_latents": 2, "steps": 3, "normals_file": "n.npz", "identity_model": "id.pt"},
    }
    groups = [{"name": f"{kind}-{node}", "kind": kind, "fixed": {**fixed, "seed": seed},
               "resources": {"cpu": 1, "custom": {node: 1}}}
              for kind, fixed in jobs.items() for seed, node in ((0, "head"), (1, "worker"))]
    return {
        "name": "two-nodes", "kind": "stylegan-sample",
        "fixed": {"generator": "g.pt", "classifier": {"source": "torchscript:red.pt"}, "batch_size": 8,
                  "device": "cpu"},
        "groups": groups,
    }


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --mount (root or user namespaces) and the ray CLI")
def test_stylegan_sweep_with_driver_only_files_runs_every_kind_on_a_node_that_cannot_see_them(tmp_path):
    driver = tmp_path / "driver"  # everything only the driver has: config, model files, the store
    driver.mkdir()
    cfg = driver / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(_config(driver)))
    # Short temp dirs (Ray's socket paths must stay under 108 bytes), one per node.
    head_tmp, worker_tmp = tempfile.mkdtemp(prefix="pl-h"), tempfile.mkdtemp(prefix="pl-w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token"}  # as the README's cluster: every node and the driver use ~/.ray/auth_token
    env.pop("RAY_ADDRESS", None)
    # Each node keeps its copies of shipped files in its own temp dir (its trials inherit it).
    head_env, worker_env = ({**env, "PRIORLAB_INPUT_CACHE": f"{d}/inputs"} for d in (head_tmp, worker_tmp))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus=1", "--disable-usage-stats"]
    head = worker = None
    try:
        head = subprocess.Popen(
            [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             f"--temp-dir={head_tmp}", '--resources={"head": 1}', *common],
            env=head_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        seen = tmp_path / "seen-by-worker.txt"
        script = ('mount -t tmpfs tmpfs "$1" && ls -A "$1" > "$2" && shift 2 && exec "$@"')
        worker = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(driver), str(seen),
             RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1", f"--temp-dir={worker_tmp}",
             '--resources={"worker": 1}', *common],
            env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        # Both nodes up (a loaded machine can take a minute to start a head): retry the join.
        wait = ("import ray, time\nt = time.time()\n"
                "while True:\n"
                "    try:\n"
                "        ray.init(address=%r, log_to_driver=False); break\n"
                "    except Exception:\n"
                "        if time.time() - t > 240: raise\n"
                "        time.sleep(2)\n"
                "while sum(n['Alive'] for n in ray.nodes()) < 2 and time.time() - t < 300: time.sleep(0.5)\n"
                "print(sum(n['Alive'] for n in ray.nodes()))" % address)
        nodes = procs.run([sys.executable, "-c", wait], env=env, timeout=400)
        assert nodes.stdout.strip().endswith("2"), nodes.stdout + nodes.stderr
        assert seen.read_text() == ""  # the worker node sees an empty folder where the driver's files are

        store = driver / "store"
        run = procs.run(
            [sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(store),
             "--address", address], env=env, timeout=900, cwd=tmp_path)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        runs = Store(store, readonly=True).runs(sweep="two-nodes")
        assert len(runs) == 8 and set(runs["status"]) == {"done"}, runs[["kind", "status", "error"]]
        assert runs["node"].nunique() == 2  # seed 0 on the head, seed 1 on the worker
        for kind, of_kind in runs.groupby("kind"):
            assert sorted(of_kind["seed"]) == [0, 1], kind
        trav = runs[runs["kind"] == "stylegan-traverse"]
        assert set(trav["normals_source"]) == {"file"}
        hashes = json.loads(trav["input_sha256"].iloc[0])
        assert set(hashes) == {"generator", "classifier.source", "normals_file", "identity_model"}
        # The worker read its copies, fetched from the object store into its own cache.
        assert sorted(p.name for p in Path(worker_tmp, "inputs").glob("*/*")) == ["g.pt", "id.pt", "n.npz", "red.pt"]
    finally:
        for proc in (worker, head):
            if proc is not None:
                _stop(proc)
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(worker_tmp, ignore_errors=True)
