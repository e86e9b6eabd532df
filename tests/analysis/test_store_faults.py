"""No fault may lose or corrupt a result: done runs are not reset, readers never write,
damaged files are one line naming them, artifacts are trusted only by their hash, and
`priorlab check` finds (and `--repair` removes) what is wrong."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from priorlab.analysis import schema
from priorlab.analysis.check import GRACE_S, check_store
from priorlab.analysis.store import ArtifactCorrupt, Store, StoreError
from synthetic import encode_png
from priorlab.cluster.cli import main

ROOT = Path(__file__).resolve().parents[2]


def png(seed: int = 0) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (8, 12, 3), dtype=np.uint8))


def filled(root: Path) -> Store:
    """A store with one done run (metrics, two artifacts) and one pending run."""
    store = Store(root)
    store.upsert_sweep("s", "kind: dip\n", "host")
    store.register_runs("s", [{"run_id": "r1", "kind": "dip", "params": {"arch": "a"}},
                              {"run_id": "r2", "kind": "dip", "params": {"arch": "b"}}])
    store.start_run("r1", node="n")
    store.log_metrics("r1", 10, {"psnr": 20.0})
    store.log_artifact("r1", 10, "output", png(1))
    store.log_artifact("r1", 10, "clean", png(2))
    store.finish_run("r1", "done", summary={"best_psnr": 20.0})
    store.close()
    return store


def digest(path: Path) -> tuple[bytes, int]:
    return hashlib.sha256(path.read_bytes()).digest(), path.stat().st_mtime_ns


def old_v1_store(root: Path) -> Path:
    """A store as the first release wrote it (schema v1), with one done run."""
    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "priorlab.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    schema.migrate(conn, migrations=schema.MIGRATIONS[:1])
    conn.execute("INSERT INTO runs(run_id, kind, status, created_at) VALUES ('old', 'dip', 'done', 0)")
    conn.close()
    return root


# ------------------------------------------------------------------ done runs are not reset


def test_start_run_never_resets_a_done_run_unless_forced(tmp_path):
    store = filled(tmp_path / "s")
    before = store.runs().set_index("run_id")
    assert store.start_run("r1", node="other-sweep") is False
    after = store.runs().set_index("run_id")
    assert after.loc["r1", "status"] == "done" and after.loc["r1", "node"] == "n"
    assert after.loc["r1", "attempts"] == 1 and after.loc["r1", "best_psnr"] == 20.0
    assert after.loc["r1", "finished_at"] == before.loc["r1", "finished_at"]
    assert store.metrics(["r1"])["value"].tolist() == [20.0] and len(store.artifacts(["r1"])) == 2
    assert store.start_run("r2") is True  # pending runs are claimed as before
    assert store.start_run("r1", force=True) is True  # --force
    assert store.metrics(["r1"]).empty and store.runs(status="running").shape[0] == 2
    with pytest.raises(KeyError):
        store.start_run("nope")


def test_writer_drops_the_shards_of_a_finished_run(tmp_path):
    from priorlab.cluster.writer import StoreWriter

    filled(tmp_path / "s")
    w = StoreWriter(str(tmp_path / "s"))
    w.put_shard("r2", 0, b"arrays")
    w.start_run("r2", "n")
    assert w.get_shards("r2", 1) == [b"arrays"]  # what the run's finishing trial does
    w.finish_run("r2", "error", None, "boom")
    w.flush()
    assert w.shards_present("r2") == [0]  # a failed run keeps them for its rerun
    w.start_run("r2", "n")
    assert w.get_shards("r2", 1) == [b"arrays"]
    w.finish_run("r2", "done", {"best_psnr": 1.0}, None)
    w.flush()
    assert not (tmp_path / "s" / "shards" / "r2").exists()


# ------------------------------------------------------------------ readers never write


def test_readonly_store_reads_without_writing(tmp_path):
    filled(tmp_path / "s")
    db = tmp_path / "s" / "priorlab.db"
    for extra in ("-wal", "-shm"):  # a cleanly closed store: the main file only
        assert not Path(str(db) + extra).exists()
    before = digest(db)
    ro = Store(tmp_path / "s", readonly=True)
    assert len(ro.runs()) == 2 and ro.metrics(["r1"])["value"].tolist() == [20.0]
    assert ro.artifact("r1", "output") == png(1)
    with pytest.raises(StoreError, match="read-only"):
        ro.finish_run("r2", "done")
    assert digest(db) == before
    with pytest.raises(StoreError, match="no priorlab store"):
        Store(tmp_path / "typo", readonly=True)
    assert not (tmp_path / "typo").exists()


def test_readonly_store_needing_a_migration_says_how_and_writes_nothing(tmp_path):
    root = old_v1_store(tmp_path / "old")
    db = root / "priorlab.db"
    before = digest(db)
    with pytest.raises(StoreError, match=r"schema v1.*priorlab check --store .* --repair"):
        Store(root, readonly=True)
    assert digest(db) == before
    rc = main(["runs", "--store", str(root)])
    assert rc == 2 and digest(db) == before
    # check reports it; --repair migrates it, and readers work again.
    assert main(["check", "--store", str(root)]) == 1
    assert main(["check", "--store", str(root), "--repair"]) == 0
    assert Store(root, readonly=True).runs()["run_id"].tolist() == ["old"]


NOBODY = 65534


def _runs_as_nobody(store: Path) -> tuple[int, str]:
    """`priorlab runs --store STORE` in a forked child that has dropped to the `nobody` user
    (no exec: that user may not reach this interpreter's files); returns (exit status, output)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sys.stdout = sys.stderr = open(write, "w", closefd=False)  # past pytest's capture
            code = main(["runs", "--store", str(store)])
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as e:  # noqa: BLE001 - report anything to the parent
            os.write(write, f"child failed: {e!r}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX users")
def test_runs_on_a_store_this_user_cannot_write(tmp_path, capsys):
    """`priorlab runs` on a store owned by someone else, in a folder nobody may write (as on a
    read-only mount). Root ignores file modes, so under root the reader is a forked child
    running as `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="priorlab-ro-"))  # outside pytest's private tmp
    try:
        os.chmod(base, 0o755)
        filled(base / "s")
        subprocess.run(["chmod", "-R", "a-w", str(base / "s")], check=True)
        before = digest(base / "s" / "priorlab.db")
        if os.geteuid() == 0:
            code, out = _runs_as_nobody(base / "s")
        else:
            code = main(["runs", "--store", str(base / "s")])
            out = "".join(capsys.readouterr())
        assert code == 0, out
        assert "r1" in out and "r2" in out
        assert digest(base / "s" / "priorlab.db") == before
        assert sorted(p.name for p in (base / "s").iterdir()) == ["artifacts", "priorlab.db"]
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ damaged databases


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(8192))


def _bad_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:16] = b"NotSQLite format"
    db.write_bytes(bytes(data))


def _truncated(db: Path) -> None:
    db.write_bytes(db.read_bytes()[: 4096 + 100])


def _zero_bytes(db: Path) -> None:
    db.write_bytes(b"")


DAMAGE = {"garbage": _garbage, "bad-header": _bad_header, "truncated": _truncated, "zero-bytes": _zero_bytes}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_database_is_one_line_naming_the_file_in_every_command(tmp_path, capsys, damage):
    filled(tmp_path / "s")
    db = tmp_path / "s" / "priorlab.db"
    DAMAGE[damage](db)
    before = db.read_bytes()
    with pytest.raises(StoreError, match=str(db)):
        Store(tmp_path / "s", readonly=True)
    capsys.readouterr()
    for argv, want in ((["runs", "--store", str(tmp_path / "s")], 2),
                       (["check", "--store", str(tmp_path / "s")], 1)):
        assert main(argv) == want, argv
        out, err = capsys.readouterr()
        text = (out + err).strip()
        assert str(db) in text and "Traceback" not in text, text
        if want == 2:
            assert len(err.strip().splitlines()) == 1, err
    assert db.read_bytes() == before  # a reader never gives a damaged or empty file a schema


def test_damaged_database_fails_a_local_run_in_one_line(tmp_path, capsys):
    filled(tmp_path / "s")
    _garbage(tmp_path / "s" / "priorlab.db")
    rc = main(["dip", "--store", str(tmp_path / "s"), "--iterations", "2", "--size", "32", "--width", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "s" / "priorlab.db") in err and "Traceback" not in err


def _malformed_pages(db: Path) -> None:
    """Keep the header and schema page, scribble over the table pages: the store opens, and
    the first query that reaches them fails."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data), page):
        data[start:start + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))


def test_query_on_damaged_pages_is_a_store_error(tmp_path):
    store = filled(tmp_path / "s")
    with sqlite3.connect(store.db_path) as c:  # fold the WAL into the file
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _malformed_pages(store.db_path)
    with pytest.raises(StoreError, match=rf"{store.db_path}: .*(malformed|not a database)"):
        Store(tmp_path / "s", readonly=True).runs()


@pytest.mark.parametrize("damage", ["garbage", "malformed"])
def test_dashboard_shows_the_line_instead_of_raising(monkeypatch, tmp_path, damage):
    from apptest_helpers import open_page

    store = filled(tmp_path / "s")
    with sqlite3.connect(store.db_path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (_garbage if damage == "garbage" else _malformed_pages)(store.db_path)
    for page in ("sweeps", "runs", "compare"):
        at = open_page(monkeypatch, tmp_path / "s", page)
        assert not at.exception, [e.value for e in at.exception]
        # The line is shown as text: Markdown escapes and word joiners undone, it names the file.
        errors = [e.value.replace("\\", "").replace("\u2060", "") for e in at.error]
        assert any(str(store.db_path) in e for e in errors), (page, errors)


# ------------------------------------------------------------------ artifacts


def test_same_size_damaged_artifact_is_rewritten_not_trusted(tmp_path):
    store = filled(tmp_path / "s")
    sha = store.artifacts(["r1"], names=["output"])["sha256"].iloc[0]
    path = store.artifact_path(sha)
    good = path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF  # one flipped byte: same size, different content
    path.write_bytes(bytes(bad))
    with pytest.raises(ArtifactCorrupt, match=str(path)):
        store.artifact_bytes(sha, verify=True)
    assert store.artifact_bytes(sha) == bytes(bad)  # unverified reads return what is there
    store.register_runs("s", [{"run_id": "r3", "kind": "dip", "params": {}}])
    store.log_artifact("r3", 0, "output", good)  # the same image again: the file is repaired
    assert path.read_bytes() == good and store.artifact_bytes(sha, verify=True) == good


def test_check_finds_corrupt_missing_and_orphans_and_repair_removes_orphans(tmp_path, capsys):
    store = filled(tmp_path / "s")
    root = tmp_path / "s"
    assert main(["check", "--store", str(root)]) == 0
    assert capsys.readouterr().out.strip().endswith("clean")

    arts = store.artifacts(["r1"]).set_index("name")["sha256"]
    corrupt, missing = store.artifact_path(arts["output"]), store.artifact_path(arts["clean"])
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")
    missing.unlink()
    # A rerun replaces r1's rows with a new image: the old file is now an orphan, as is a temp
    # file of an interrupted write and the shards of the finished run.
    store.start_run("r1", force=True)
    store.log_artifact("r1", 10, "output", png(1))
    store.log_artifact("r1", 10, "clean", png(2))
    store.log_artifact("r1", 10, "extra", png(3))
    store.finish_run("r1", "done", summary={"best_psnr": 20.0})
    store.start_run("r1", force=True)
    store.log_artifact("r1", 10, "output", png(1))
    store.log_artifact("r1", 10, "clean", png(2))
    store.finish_run("r1", "done", summary={"best_psnr": 20.0})
    orphan = store.artifact_path(hashlib.sha256(png(3)).hexdigest())
    tmp_file = orphan.parent / ".abc.tmp"
    tmp_file.write_bytes(b"half")
    shards = root / "shards" / "r1"
    shards.mkdir(parents=True)
    (shards / "00000.npz").write_bytes(b"x")
    fresh = store.artifact_path("f" * 64)  # a write in flight (file first, row next)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_bytes(png(4))
    old = time.time() - GRACE_S - 60
    for p in (orphan, tmp_file, shards):
        os.utime(p, (old, old))
    # The files were repaired by the rerun (hash, not size); damage them again.
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")
    missing.unlink()

    assert main(["check", "--store", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"corrupted artifact: {corrupt} (runs r1)" in out
    assert f"missing artifact: {arts['clean']} (runs r1)" in out
    assert f"orphan file: {orphan}" in out and f"orphan file: {tmp_file}" in out
    assert f"shard folder of a finished run: {shards}" in out
    assert str(fresh) not in out  # too recent to call an orphan
    assert orphan.exists() and shards.exists()  # checking alone removes nothing

    assert main(["check", "--store", str(root), "--repair"]) == 1  # corrupt/missing remain
    out = capsys.readouterr().out
    assert f"removed: {orphan}" in out and f"removed: {shards}" in out
    assert not orphan.exists() and not tmp_file.exists() and not shards.exists()
    assert corrupt.exists() and fresh.exists()
    report = check_store(root)
    assert not report.orphans and not report.stale_shards
    assert set(report.corrupt) == {str(corrupt)} and set(report.missing) == {arts["clean"]}


def test_check_reports_database_integrity(tmp_path, capsys):
    store = filled(tmp_path / "s")
    with sqlite3.connect(store.db_path) as c:  # a row pointing at a run that does not exist
        c.execute("INSERT INTO metrics(run_id, step, name, value) VALUES ('ghost', 0, 'psnr', 1.0)")
    assert main(["check", "--store", str(tmp_path / "s")]) == 1
    assert "rows refer to missing rows (first: table metrics" in capsys.readouterr().out
    assert main(["check", "--store", str(tmp_path / "nowhere")]) == 2
