"""Shared fixtures: one Ray cluster per test session, and one small real sweep's store.

The session cluster has two nodes (a head and a worker, 1 CPU each, each with a custom
`slot` resource) so the sweep tests can show trials landing on both without starting Ray
twice. Ray starts lazily: test files that need no Ray never pay for it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# The small sweep that the store-reading tests (dashboard, runs CLI) share. Real sweep code,
# tiny sizes: 32-pixel images, width 8, a few dozen iterations.
TINY_SWEEP = textwrap.dedent(
    """
    name: tiny
    kind: dip
    fixed: {image: astronaut, size: 32, width: 8, iterations: 40, log_every: 10, snapshots: [20, 40], task: denoise}
    grid:
      arch: [seed-double, seed-single]
      depth: [1, 2]
      sigma: [0.1, 0.5]
      loss: [l2, l1]
    groups:
      - name: denoise
      - name: inpaint
        fixed: {task: inpaint, loss: l2, sigma: 0.1}
        grid: {region: [8, 16], depth: [1, 2], arch: [seed-double]}
      - name: baselines
        kind: dip-baseline
        grid: {method: [nlm, tv]}
      - name: stylegan-samples
        kind: stylegan-sample
        fixed: {generator: "random:16", n: 4}
      - name: stylegan-interpolation
        kind: stylegan-interpolate
        fixed: {generator: "random:16", pairs: 1, steps: 5, calibration_samples: 32}
    resources: {cpu: 1}
    """
)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny convolutions: one thread is as fast, and far faster when the 2 cores are shared
    (OpenMP workers spin-waiting under oversubscription slow small ops down many times)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster for the whole session (head + one worker node)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"slot": 2, "head": 1}, "include_dashboard": False},
    )
    worker = cluster.add_node(num_cpus=1, resources={"slot": 2, "worker": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.extra_worker = worker
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def sweep_store(ray_cluster, tmp_path_factory) -> Path:
    """A store written once per session by the real sweep code over the session cluster."""
    from apptest_helpers import sweep_into_store

    return sweep_into_store(TINY_SWEEP, tmp_path_factory.mktemp("sweep-store"))


@pytest.fixture()
def empty_store(tmp_path) -> Path:
    from priorlab.analysis.store import Store

    Store(tmp_path / "empty")
    return tmp_path / "empty"


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster (Debian's `postgresql`) for the session; skips, saying why,
    only where one cannot start here."""
    from servers import PostgresServer

    try:
        server = PostgresServer()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"no PostgreSQL server for the shared-store tests: {e}")
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on 127.0.0.1 for the session; the AWS_* variables that point
    s3fs at it are set for the whole session (Ray workers started later inherit them)."""
    from servers import S3Server

    try:
        server = S3Server()
    except (ImportError, RuntimeError, OSError) as e:
        pytest.skip(f"no S3-compatible server for the shared-store tests: {e}")
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.close()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return pg_server.new_database()


@pytest.fixture
def s3_url(s3_server) -> str:
    """A fresh bucket on the session's S3 server, as s3://bucket/prefix."""
    return s3_server.new_bucket()
