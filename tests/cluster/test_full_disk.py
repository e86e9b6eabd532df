"""A full disk ends a sweep in one line, and the same command resumes once there is room
(issue 16, item 12). Needs a small tmpfs: the test mounts one (root) or skips."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from priorlab.analysis.store import Store
from priorlab.cluster.sweep import EXIT_CONFIG, EXIT_OK, run_sweep

CONFIG = textwrap.dedent("""
    name: full
    kind: dip
    fixed: {image: astronaut, size: 32, width: 4, depth: 1, iterations: 20, log_every: 1, snapshots: [5, 10, 15, 20]}
    grid: {seed: [0, 1, 2, 3]}
    resources: {cpu: 1, custom: {slot: 1}}
    """)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_a_rerun_completes(ray_cluster, small_disk, tmp_path):
    store_dir = small_disk / "store"
    Store(store_dir).close()
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 300_000))  # room for the start, not for the whole sweep
    cfg = tmp_path / "full.yaml"
    cfg.write_text(CONFIG)
    lines: list[str] = []
    status = run_sweep(str(cfg), store_dir=str(store_dir), echo=lines.append)
    out = "\n".join(lines)
    assert status in (EXIT_CONFIG, 1), out
    assert "Traceback" not in out and "TuneError" not in out, out
    assert any("full" in line for line in lines) or "error in" in out, out
    filler.unlink()
    lines = []
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lines.append) == EXIT_OK, "\n".join(lines)
    runs = Store(store_dir, readonly=True).runs(sweep="full")
    assert (runs["status"] == "done").all() and len(runs) == 4
