"""A store the group shares: PostgreSQL for the records, an S3-compatible server for the files.

Real servers, started once per session by `pg_server` / `s3_server` (tests/servers.py); each
test gets its own database and bucket. Few tests, small data: CI runs them on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import schema
from priorlab.analysis.check import check_store
from priorlab.analysis.schema import SCHEMA_VERSION, StoreError
from priorlab.analysis.store import Store
from synthetic import encode_png

ROOT = Path(__file__).resolve().parents[2]


def png(seed: int = 0) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (8, 12, 3), dtype=np.uint8))


def fill(store: Store) -> None:
    """The same writes into any store: two sweeps, a done run with rows, a diverged one, a pending one."""
    store.upsert_sweep("s1", "kind: dip\n", "host-a")
    store.register_runs("s1", [
        {"run_id": "r1", "kind": "dip", "params": {"arch": "a", "depth": 2, "sigma": 0.1, "region": None}},
        {"run_id": "r2", "kind": "dip", "params": {"arch": "b", "depth": 4, "sigma": 0.5, "region": 32}},
        {"run_id": "r3", "kind": "dip-baseline", "params": {"method": "tv", "flags": [1, 2]}}])
    store.register_runs("s2", [{"run_id": "r1", "kind": "dip", "params": {}}])
    for rid, status in (("r1", "done"), ("r2", "done")):
        assert store.start_run(rid, node="n1")
        with store.batch():
            store.log_metrics_many(rid, [(0, "psnr", 10.0), (10, "psnr", 20.5), (10, "loss", float("nan"))])
            store.log_artifacts_many(rid, [(0, "output", png(0)), (10, "output", png(int(rid[1])))])
            store.finish_run(rid, status, {"best_psnr": 20.5, "status": "diverged" if rid == "r2" else None})
    store.log_metrics("r1", 10, {"psnr": 21.0})  # idempotent re-log replaces


def comparable(store: Store) -> dict[str, pd.DataFrame]:
    drop = ["created_at", "started_at", "finished_at"]
    runs = store.runs().drop(columns=drop).sort_values("run_id").reset_index(drop=True)
    sweeps = store.sweeps().drop(columns=["created_at", "updated_at", "finished_at"])
    return {"runs": runs, "sweeps": sweeps, "metrics": store.metrics(), "artifacts": store.artifacts(),
            "where": store.runs(where={"depth": [2, 4], "region": None})[["run_id"]]}


def test_postgres_and_s3_hold_what_a_folder_holds(tmp_path, pg_url, s3_url):
    folder, shared = Store(tmp_path / "folder"), Store(pg_url, artifacts=s3_url)
    for store in (folder, shared):
        fill(store)
    shared.upsert_sweep("s1", "kind: dip\n", "host-a")  # every write is idempotent
    shared.register_runs("s2", [{"run_id": "r1", "kind": "dip", "params": {}}])
    shared.log_artifacts_many("r1", [(0, "output", png(0))])
    a, b = comparable(folder), comparable(shared)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)
    sha = b["artifacts"]["sha256"].iloc[0]
    assert shared.artifact_bytes(sha, verify=True) == folder.artifact_bytes(sha)
    assert shared.artifact_path(sha) == f"{s3_url}/artifacts/{sha[:2]}/{sha}.png"
    assert shared.start_run("r1") is False  # done stays done
    assert shared.counts("s1")["diverged"] == 1 and shared.done_ids(["r1", "r2", "r3"]) == {"r1"}
    reader = Store(pg_url, artifacts=s3_url, readonly=True)
    assert reader.runs().shape == b["runs"].shape[:1] + (reader.runs().shape[1],)
    with pytest.raises(StoreError, match="read-only"):
        reader.upsert_sweep("x")
    assert check_store(pg_url, artifacts=s3_url).clean


def test_a_bulk_metric_batch_lands_as_row_by_row_writes_do(tmp_path, pg_url, s3_url):
    # A writer's batch of many rows goes to PostgreSQL as one array INSERT (postgres.BULK_ROWS):
    # repeated keys keep the last value, NaN is NULL, infinities and re-logs are kept as in SQLite.
    from priorlab.analysis.store.postgres import BULK_ROWS

    rows = [("r1", step, f"m{k}", float(step * 10 + k)) for step in range(4) for k in range(BULK_ROWS)]
    rows += [("r1", 0, "m0", -1.0), ("r2", 5, "psnr", float("nan")), ("r2", 6, "psnr", float("inf")),
             ("r2", 7, "psnr", -float("inf")), ("r2", 8, "psnr", 1e308), ("r2", 9, "psnr", 5e-324)]
    frames = []
    for store in (Store(tmp_path / "folder"), Store(pg_url, artifacts=s3_url)):
        fill(store)
        store.log_metrics_rows(rows)
        store.log_metrics_rows(rows[:BULK_ROWS])  # a resent batch replaces, never duplicates
        frames.append(store.metrics().sort_values(["run_id", "name", "step"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_dtype=False)
    m = frames[1].set_index(["run_id", "step", "name"])["value"]
    assert m[("r1", 0, "m0")] == 0.0 and np.isnan(m[("r2", 5, "psnr")]) and m[("r2", 6, "psnr")] == np.inf


@pytest.mark.parametrize("backend", ["folder", "postgres"])
def test_a_batch_without_savepoints_is_all_or_nothing_and_the_next_has_them_again(tmp_path, pg_url, s3_url,
                                                                                  backend):
    store = Store(tmp_path / "folder") if backend == "folder" else Store(pg_url, artifacts=s3_url)
    fill(store)
    with pytest.raises(RuntimeError):
        with store.batch(savepoints=False):
            store.log_metrics("r1", 50, {"psnr": 1.0})  # a nested block: joins, no savepoint
            raise RuntimeError("the group commit's write failed")
    assert 50 not in store.metrics(run_ids=["r1"])["step"].tolist()
    with store.batch():  # an ordinary batch: a nested block that fails alone rolls back alone
        store.log_metrics("r1", 60, {"psnr": 2.0})
        with pytest.raises(KeyError):
            store.finish_run("no-such-run", "done")
    assert 60 in store.metrics(run_ids=["r1"])["step"].tolist()


def test_check_finds_missing_and_corrupt_objects(pg_url, s3_url):
    store = Store(pg_url, artifacts=s3_url)
    fill(store)
    arts = store.artifacts()
    gone, bad = arts["sha256"].iloc[0], arts["sha256"].iloc[-1]
    store.files.fs.rm(store.files._artifact_key(gone))
    store.files.fs.pipe_file(store.files._artifact_key(bad), png(99))
    report = check_store(pg_url, artifacts=s3_url)
    assert not report.clean and gone in report.missing
    assert any(bad in path for path in report.corrupt)


def test_a_later_writer_restores_a_lost_or_damaged_object_and_uploads_a_batch_once(pg_url, s3_url):
    store = Store(pg_url, artifacts=s3_url)
    fill(store)
    arts = store.artifacts()
    gone, bad = arts["sha256"].iloc[0], arts["sha256"].iloc[-1]
    images = {sha: store.files.read_artifact(sha) for sha in (gone, bad)}
    store.files.fs.rm(store.files._artifact_key(gone))
    store.files.fs.pipe_file(store.files._artifact_key(bad), png(99))
    assert not check_store(pg_url, artifacts=s3_url).clean
    again = Store(pg_url, artifacts=s3_url)  # a later sweep logs the same images
    run = arts["run_id"].iloc[0]
    shas = again.log_artifacts_many(run, [(900, "a", images[gone]), (900, "b", images[bad]), (901, "a", images[gone])])
    assert shas == [gone, bad, gone]
    assert check_store(pg_url, artifacts=s3_url).clean


def test_server_store_needs_artifacts_and_no_password_in_the_url(pg_url):
    with pytest.raises(StoreError, match="--artifacts"):
        Store(pg_url)
    with pytest.raises(StoreError, match="PGPASSWORD") as e:
        Store(pg_url.replace("postgres@", "postgres:hunter2@"), artifacts="memory://x")
    assert "hunter2" not in str(e.value)


def test_postgres_store_migrates_forward(pg_url, s3_url, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])  # a v1 store, as first released
    old = Store(pg_url, artifacts=s3_url)
    old.register_runs("s", [{"run_id": "r1", "kind": "dip", "params": {"depth": 2}}])
    old.close()
    monkeypatch.undo()
    with pytest.raises(StoreError, match="older priorlab"):
        Store(pg_url, artifacts=s3_url, readonly=True)
    store = Store(pg_url, artifacts=s3_url)
    assert store.schema_version == SCHEMA_VERSION
    assert store.start_run("r1") and store.mark_unfinished(["r1"]) == 1
    store.finish_run("r1", "pruned")  # v2's status
    assert store.runs()["status"].tolist() == ["pruned"]


CLAIMER = """
import random, sys, time
from priorlab.analysis.store import Store
store = Store(sys.argv[1], artifacts=sys.argv[2])
ids = [f"r{i:02d}" for i in range(int(sys.argv[3]))]
random.Random(int(sys.argv[4])).shuffle(ids)
store.register_runs(f"sweep-{sys.argv[4]}", [{"run_id": r, "kind": "dip", "params": {"i": r}} for r in ids])
ran = []
for rid in ids:
    if not store.start_run(rid, node=sys.argv[4]):
        continue
    store.log_metrics(rid, 0, {"psnr": 1.0})
    time.sleep(0.01)
    store.finish_run(rid, "done", {"by": sys.argv[4]})
    ran.append(rid)
print(" ".join(ran))
"""


def test_two_drivers_share_runs_without_losing_or_redoing_any(pg_url, s3_url):
    n = 40
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLAIMER), pg_url, s3_url, str(n), str(k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for k in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    ran = [o[0].split() for o in outs]
    runs = Store(pg_url, artifacts=s3_url, readonly=True).runs()
    assert len(runs) == n and set(runs["status"]) == {"done"}  # 0 lost
    assert sorted(ran[0] + ran[1]) == sorted(runs["run_id"])  # 0 duplicated: each ran by exactly one
    assert set(runs["attempts"]) == {1}  # 0 redone
    assert set(runs["sweep"]) == {"sweep-1,sweep-2"}


def test_store_copy_round_trips_folder_to_postgres_s3_and_back(tmp_path, pg_url, s3_url):
    from priorlab.analysis.store.copy import copy_store

    fill(Store(tmp_path / "a"))
    assert copy_store(tmp_path / "a", pg_url, artifacts=s3_url).clean
    lines = []
    assert copy_store(tmp_path / "a", pg_url, artifacts=s3_url, echo=lines.append).clean  # again: nothing to do
    assert "0 to copy" in lines[0]
    assert copy_store(pg_url, tmp_path / "b", src_artifacts=s3_url).clean
    a, b = comparable(Store(tmp_path / "a")), comparable(Store(tmp_path / "b"))
    shared = comparable(Store(pg_url, artifacts=s3_url, readonly=True))
    for name in a:
        pd.testing.assert_frame_equal(a[name], shared[name], check_dtype=False, obj=name)
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def test_cli_names_a_server_store_with_flags_or_environment(tmp_path, pg_url, s3_url, s3_server):
    import os

    fill(Store(tmp_path / "a"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "priorlab.cluster.cli"]
    out = subprocess.run(cli + ["store", "copy", str(tmp_path / "a"), pg_url, "--artifacts", s3_url],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().endswith("clean"), out.stderr
    out = subprocess.run(cli + ["runs", "--format", "csv"], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "PRIORLAB_STORE": pg_url, "PRIORLAB_ARTIFACTS": s3_url})
    assert out.returncode == 0 and sorted(pd.read_csv(__import__("io").StringIO(out.stdout))["run_id"]) == \
        ["r1", "r2", "r3"], out.stderr
    out = subprocess.run(cli + ["check", "--store", pg_url], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--artifacts" in out.stderr


def test_servers_that_go_away_are_one_line_naming_which_and_writes_resume(pg_server, s3_server, pg_url, s3_url):
    store = Store(pg_url, artifacts=s3_url)
    store.register_runs("s", [{"run_id": "r1", "kind": "dip", "params": {}}])
    assert store.start_run("r1")
    pg_server.stop()
    try:
        with pytest.raises(StoreError) as e:
            with store.batch():  # a writer's batch: rows and the finish together, or nothing
                store.log_metrics("r1", 0, {"psnr": 1.0})
                store.finish_run("r1", "done")
        assert "\n" not in str(e.value) and "PostgreSQL store" in str(e.value) and "resumes" in str(e.value)
        with pytest.raises(StoreError, match="PostgreSQL store"):
            store.runs()
    finally:
        pg_server.start()
    assert store.runs()["status"].tolist() == ["running"]  # nothing half-written
    with store.batch():  # the same writes, once the server is back
        store.log_metrics("r1", 0, {"psnr": 1.0})
        store.finish_run("r1", "done")
    assert store.done_ids(["r1"]) == {"r1"}

    s3_server.stop()
    try:
        with pytest.raises(StoreError) as e:
            store.log_artifact("r1", 0, "output", png(1))
        assert "\n" not in str(e.value) and str(e.value).startswith(f"artifacts {s3_url}: cannot write")
    finally:
        s3_server.start()  # moto keeps nothing across a restart: later tests make their own buckets
    assert store.artifacts().empty  # the row is written only after its file


def test_a_notebook_opens_the_store_the_environment_names(monkeypatch, pg_url, s3_url):
    from priorlab.analysis import open_store

    fill(Store(pg_url, artifacts=s3_url))
    monkeypatch.setenv("PRIORLAB_STORE", pg_url)
    monkeypatch.setenv("PRIORLAB_ARTIFACTS", s3_url)
    store = open_store()
    assert store.readonly and sorted(store.runs()["run_id"]) == ["r1", "r2", "r3"]
