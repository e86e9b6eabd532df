"""`priorlab check --repair` removes nothing outside the store and nothing a result references,
whatever state the store is in (issue 16, items 3-5)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from priorlab.analysis.check import GRACE_S, check_store
from priorlab.analysis.store import Store
from priorlab.cluster.cli import main
from synthetic import encode_png

OLD = time.time() - GRACE_S - 60


def png(seed: int) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (8, 12, 3), dtype=np.uint8))


def aged(*paths: Path) -> None:
    for p in paths:
        os.utime(p, (OLD, OLD), follow_symlinks=False)


def done_store(root: Path) -> Store:
    store = Store(root)
    store.register_runs("s", [{"run_id": "r1", "kind": "dip", "params": {}}])
    store.start_run("r1")
    store.log_artifact("r1", 10, "output", png(1))
    store.finish_run("r1", "done", {"best_psnr": 1.0})
    store.close()
    return store


def outside_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "someone-elses"
    (folder / "ab").mkdir(parents=True)
    files = [folder / "ab" / "thesis.png", folder / "notes.txt", folder / "ab" / ".x.tmp"]
    for f in files:
        f.write_bytes(b"precious")
    aged(*files, folder / "ab")
    return folder, files


def test_repair_never_follows_a_linked_artifacts_or_shards_folder(tmp_path, capsys):
    for linked in ("artifacts", "shards"):
        root = tmp_path / linked / "store"
        store = done_store(root)
        outside, files = outside_folder(tmp_path / linked)
        if linked == "artifacts":  # the store's images moved elsewhere, linked back
            os.rename(root / "artifacts", outside / "real")
            for f in (outside / "real").rglob("*.png"):
                aged(f)
        (root / linked).symlink_to(outside, target_is_directory=True)
        code = main(["check", "--store", str(root), "--repair"])
        out = capsys.readouterr().out
        assert all(f.read_bytes() == b"precious" for f in files), out
        assert f"skipped (a symbolic link" in out and f"{root / linked} -> {outside}" in out
        assert "removed:" not in out
        assert store.artifact_bytes(store.artifacts()["sha256"][0]) is not None or linked == "artifacts"
        assert code in (0, 1)


def test_repair_never_removes_or_claims_to_remove_a_linked_shard_folder(tmp_path, capsys):
    root = tmp_path / "store"
    done_store(root)
    outside, files = outside_folder(tmp_path)
    (root / "shards").mkdir()
    (root / "shards" / "unknown-run").symlink_to(outside, target_is_directory=True)
    linked_file = root / "artifacts" / "ab" / ("ab" + "0" * 62 + ".png")
    linked_file.parent.mkdir(parents=True, exist_ok=True)
    linked_file.symlink_to(files[1])
    aged(root / "shards" / "unknown-run", linked_file)
    main(["check", "--store", str(root), "--repair"])
    out = capsys.readouterr().out
    assert (root / "shards" / "unknown-run").is_symlink() and linked_file.is_symlink()
    assert all(f.read_bytes() == b"precious" for f in files)
    assert "removed:" not in out, out
    assert f"{root / 'shards' / 'unknown-run'} -> {outside}" in out


def test_repair_removes_nothing_when_the_database_fails_its_integrity_check(tmp_path, capsys):
    root = tmp_path / "store"
    Store(root).close()
    db = root / "priorlab.db"
    # Damage the index on artifacts(sha256): rows written while it is declared empty are
    # missing from it afterwards, so a query through it does not see them.
    conn = sqlite3.connect(db, isolation_level=None)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'artifacts_sha'").fetchone()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'artifacts_sha'", (sql + " WHERE 0",))
    conn.close()
    store = done_store(root)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'artifacts_sha'", (sql,))
    conn.close()
    referenced = store.artifact_path(store.artifacts()["sha256"][0])
    orphan = store.artifact_path(store.put_file(png(2))[0])
    aged(referenced, orphan)

    assert main(["check", "--store", str(root), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "integrity check" in out and "repair removed nothing" in out, out
    assert referenced.exists() and orphan.exists()
    assert not check_store(root).clean  # and a later check still says so
