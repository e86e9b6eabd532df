"""The writer commits trials' rows in groups (cluster/group_commit.py): what a user relies on
still holds. A run is `done` only with all its rows, a write that fails for one run fails that
run only, a store that goes away refuses everything after and loses nothing committed, and the
object-store uploads that run in a child process land and end with the writer."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest

from priorlab.analysis.store import Store, StoreAway, StoreError
from priorlab.analysis.store.objects import FsspecFiles
from priorlab.cluster.writer import StoreWriter
from synthetic import encode_png


def _png(i: int) -> bytes:
    return encode_png(np.full((8, 8, 3), i, dtype=np.uint8))


def _writer(store: str, artifacts: str | None = None, n: int = 3) -> StoreWriter:
    w = StoreWriter(store, artifacts)
    w.upsert_sweep("g", "kind: dip\n", "host")
    w.register_runs("g", [{"run_id": f"r{i}", "kind": "dip", "params": {"seed": i}} for i in range(n)])
    return w


def _fit(w: StoreWriter, run_id: str, steps: int = 5, image: bytes | None = None) -> None:
    """What a trial sends: a claim, a batch per step (the last one with an image), the finish."""
    assert w.start_run(run_id, "node")
    for step in range(steps):
        images = [(step, "output", image)] if image is not None and step == steps - 1 else []
        w.log(run_id, [(step, "psnr", 20.0 + step), (step, "loss", 1.0 / (step + 1))], images)
    w.finish_run(run_id, "done", {"best_psnr": 20.0 + steps - 1}, None, sent=(2 * steps, int(image is not None)))


def test_interleaved_runs_are_done_with_every_row_once_flushed(tmp_path):
    w = _writer(str(tmp_path / "s"))
    for step in range(10):  # three trials' batches interleaved, as four Tune slots send them
        for r in ("r0", "r1", "r2"):
            if step == 0:
                w.start_run(r, "node")
            w.log(r, [(step, "psnr", float(step))], [(step, "output", _png(step))] if step % 5 == 0 else [])
    for r in ("r0", "r1", "r2"):
        w.finish_run(r, "done", {"best_psnr": 9.0}, None, sent=(10, 2))
    w.flush()
    store = Store(tmp_path / "s", readonly=True)
    runs = store.runs(sweep="g").set_index("run_id")
    assert runs["status"].tolist() == ["done"] * 3
    m = store.metrics(["r0", "r1", "r2"])
    assert len(m) == 30 and not m.duplicated(["run_id", "step", "name"]).any()
    assert store.artifact("r1", "output", step=5) == _png(5)


def test_a_run_whose_image_cannot_be_stored_fails_alone(tmp_path):
    w = _writer(str(tmp_path / "s"))
    bad = _png(7)
    sha = hashlib.sha256(bad).hexdigest()
    (tmp_path / "s" / "artifacts" / sha[:2] / f"{sha}.png").mkdir(parents=True)  # the file cannot be written
    _fit(w, "r0", image=_png(1))
    _fit(w, "r1", image=bad)
    _fit(w, "r2", image=_png(2))
    w.flush()
    runs = Store(tmp_path / "s", readonly=True).runs(sweep="g").set_index("run_id")
    assert runs["status"].to_dict() == {"r0": "done", "r1": "error", "r2": "done"}
    assert "its results could not all be stored" in runs.loc["r1", "error"]
    assert sha in runs.loc["r1", "error"]  # the error names the file that could not be written


def test_a_run_missing_rows_is_an_error_not_done(tmp_path):
    w = _writer(str(tmp_path / "s"))
    w.start_run("r0", "node")
    w.log("r0", [(0, "psnr", 1.0)], [])
    w.finish_run("r0", "done", {"best_psnr": 1.0}, None, sent=(3, 0))  # two batches never arrived
    w.flush()
    run = Store(tmp_path / "s", readonly=True).runs().set_index("run_id").loc["r0"]
    assert run["status"] == "error" and "metric rows" in run["error"]


def test_a_database_that_goes_away_refuses_every_later_write_and_keeps_what_was_committed(pg_server, pg_url,
                                                                                        s3_url):
    w = _writer(pg_url, s3_url)
    _fit(w, "r0", image=_png(1))
    w.flush()
    w.start_run("r1", "node")
    pg_server.stop()
    try:
        w.log("r1", [(0, "psnr", 1.0)], [])
        w.finish_run("r1", "done", {"best_psnr": 1.0}, None, sent=(1, 0))
        with pytest.raises(StoreAway, match="PostgreSQL store .*cannot reach the database"):
            w.flush()
        with pytest.raises(StoreError, match="cannot reach"):  # and every call after it, at once
            w.log("r2", [(0, "psnr", 1.0)], [])
    finally:
        pg_server.start()
    runs = Store(pg_url, artifacts=s3_url, readonly=True).runs(sweep="g").set_index("run_id")
    assert runs.loc["r0", "status"] == "done"
    assert runs.loc["r1", "status"] == "running"  # not done: a resume reruns it
    assert Store(pg_url, artifacts=s3_url, readonly=True).metrics(["r1"]).empty


def test_uploads_from_the_child_process_land_and_it_ends_with_the_writer(s3_url):
    files = FsspecFiles(s3_url)
    files.upload_in_child()
    pngs = [_png(i) for i in range(20)]
    put = files.put_artifacts(pngs)
    fresh = FsspecFiles(s3_url)
    assert [fresh.read_artifact(sha, verify=True) for sha, _, _ in put] == pngs
    child = files._uploader._proc
    files._uploader._proc.stdin.close()  # what a killed writer's end of the pipe does
    deadline = time.time() + 10
    while child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert child.poll() == 0
