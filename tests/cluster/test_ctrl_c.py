"""One Ctrl-C stops a sweep in any phase (issue 15): during StyleGAN shard scoring the main phase
must not start, the exit status is 130, scored shards and done runs are kept, and the same
command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import procs
from priorlab.analysis.store import Store

CONFIG = textwrap.dedent(
    """
    name: ctrl-c-shards
    kind: stylegan-direction
    fixed: {generator: "random:16", n_samples: 2048, keep_fraction: 0.25, n_shards: 8, batch_size: 32,
            calibration_samples: 32, device: cpu}
    groups:
      - {kind: stylegan-direction}
      - {kind: stylegan-sample, fixed: {n: 2}}
    resources: {cpu: 1}
    """
)


def test_one_sigint_during_shard_scoring_stops_everything_and_the_rerun_resumes(ray_cluster, tmp_path):
    cfg = tmp_path / "sg.yaml"
    cfg.write_text(CONFIG)
    store_dir = tmp_path / "store"
    cmd = [sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(store_dir),
           "--address", ray_cluster.address]
    # Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    shards = store_dir / "shards"
    while time.time() < deadline and not any(shards.glob("*/*")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGINT)  # one Ctrl-C, while shards are being scored
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out and "Traceback" not in out
    store = Store(store_dir)
    runs = store.runs(sweep="ctrl-c-shards").set_index("kind")
    # Not an error ("shards never scored"): the main phase never started, so neither run was claimed.
    assert set(runs["status"]) == {"pending"}, runs[["status", "error"]]
    sweeps = store.sweeps().set_index("name")
    assert sweeps.loc["ctrl-c-shards", "status"] == "interrupted"
    kept = len(list(shards.glob("*/*")))
    assert 1 <= kept < 8

    again = procs.run(cmd, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"scoring {8 - kept} shards first" in again.stdout  # the scored shards were kept
    assert set(Store(store_dir).runs(sweep="ctrl-c-shards")["status"]) == {"done"}
