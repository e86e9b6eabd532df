"""The results store: round trips, idempotency, run lifecycle, artifacts, concurrency, migrations."""

from __future__ import annotations

import io
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import schema
from priorlab.analysis.schema import SCHEMA_VERSION, SchemaVersionError
from priorlab.analysis.store import STATUSES, Store, png_size
from synthetic import encode_png, make_synthetic_store

ROOT = Path(__file__).resolve().parents[2]


def png(seed: int = 0, h: int = 8, w: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_png(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def run(run_id: str, **params) -> dict:
    return {"run_id": run_id, "kind": "dip", "params": {"arch": "arch1", "depth": 2, **params}}


def tables(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, without timestamps (for idempotency comparisons)."""
    with sqlite3.connect(store.db_path) as c:
        return {
            "sweeps": c.execute("SELECT name, config, status, host FROM sweeps ORDER BY name").fetchall(),
            "runs": c.execute("""SELECT run_id, kind, params, status, error, node, summary FROM runs
                                 ORDER BY run_id""").fetchall(),
            "run_params": c.execute("SELECT * FROM run_params ORDER BY run_id, name").fetchall(),
            "sweep_runs": c.execute("SELECT sweep, run_id FROM sweep_runs ORDER BY 1, 2").fetchall(),
            "metrics": c.execute("SELECT * FROM metrics ORDER BY run_id, step, name").fetchall(),
            "artifacts": c.execute("SELECT * FROM artifacts ORDER BY run_id, step, name").fetchall(),
        }


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "results")


def fill(store: Store) -> None:
    """One sweep, two runs: r1 done with metrics/artifacts, r2 pending."""
    store.upsert_sweep("s1", "kind: dip\n", "host-a")
    store.register_runs("s1", [run("r1", sigma=0.1, region=None), run("r2", depth=4, sigma=0.5, region=32)])
    store.start_run("r1", node="node-1")
    store.log_metrics("r1", 0, {"psnr": 10.0, "loss": 0.5})
    store.log_metrics("r1", 10, {"psnr": 20.0, "loss": 0.25})
    store.log_metrics_many("r1", [(20, "psnr", 25.0), (20, "loss", 0.125), (20, "ssim", np.float32(0.75))])
    store.log_artifact("r1", 0, "clean", png(1))
    store.log_artifact("r1", 20, "output", png(2))
    store.finish_run("r1", "done", summary={"best_psnr": 25.0, "best_step": 20, "note": "ok"})


# ---------------------------------------------------------------------------- layout & schema


def test_open_creates_folder_wal_and_version(tmp_path):
    store = Store(tmp_path / "a" / "b")
    assert store.db_path == tmp_path / "a" / "b" / "priorlab.db" and store.db_path.exists()
    with sqlite3.connect(store.db_path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r[0] for r in c.execute("SELECT version FROM schema_version")] == list(range(1, SCHEMA_VERSION + 1))
    assert store.schema_version == SCHEMA_VERSION
    Store(tmp_path / "a" / "b", create=False)  # reopening is a no-op
    with pytest.raises(FileNotFoundError, match="no priorlab store"):
        Store(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


def test_empty_store_reads(store):
    assert store.sweeps().empty
    df = store.runs()
    assert df.empty and list(df.columns[:4]) == ["run_id", "sweep", "kind", "status"]
    assert df.attrs == {"param_columns": [], "summary_columns": []}
    assert store.metrics().empty and store.artifacts().empty
    assert store.counts() == {s: 0 for s in STATUSES}
    assert store.done_ids(["x"]) == set()


# ---------------------------------------------------------------------------- round trip


def test_round_trip(store):
    fill(store)
    sw = store.sweeps().set_index("name")
    assert sw.loc["s1", "config"] == "kind: dip\n" and sw.loc["s1", "host"] == "host-a"
    assert sw.loc["s1", "status"] == "running" and sw.loc["s1", "n_runs"] == 2
    assert sw.loc["s1", "n_done"] == 1 and sw.loc["s1", "n_pending"] == 1
    store.upsert_sweep("s1")  # keeps config and host
    assert store.sweeps().loc[0, "config"] == "kind: dip\n"
    store.set_sweep_status("s1", "done")
    assert store.sweeps().loc[0, "status"] == "done" and pd.notna(store.sweeps().loc[0, "finished_at"])

    df = store.runs().set_index("run_id")
    assert df.attrs["param_columns"] == ["arch", "depth", "sigma", "region"]
    assert df.attrs["summary_columns"] == ["best_psnr", "best_step", "note"]
    r1, r2 = df.loc["r1"], df.loc["r2"]
    assert (r1["sweep"], r1["kind"], r1["status"], r1["node"], r1["attempts"]) == ("s1", "dip", "done", "node-1", 1)
    assert (r1["arch"], r1["depth"], r1["sigma"]) == ("arch1", 2, 0.1) and pd.isna(r1["region"])
    assert (r1["best_psnr"], r1["best_step"], r1["note"]) == (25.0, 20, "ok")
    assert r1["started_at"] <= r1["finished_at"] and str(r1["finished_at"].tz) == "UTC"
    assert (r2["status"], r2["depth"], r2["region"]) == ("pending", 4, 32)
    assert pd.isna(r2["best_psnr"]) and pd.isna(r2["started_at"]) and r2["attempts"] == 0

    m = store.metrics(["r1"])
    assert list(m.columns) == ["run_id", "step", "name", "value"] and len(m) == 7
    got = {(s, n): v for _, s, n, v in m.itertuples(index=False)}
    assert got[(20, "ssim")] == 0.75 and got[(10, "psnr")] == 20.0 and got[(0, "loss")] == 0.5
    assert store.metrics(names=["psnr"])["value"].tolist() == [10.0, 20.0, 25.0]
    assert store.metrics(["r2"]).empty

    a = store.artifacts(["r1"])
    assert list(a.columns) == ["run_id", "step", "name", "sha256", "width", "height"]
    assert a[["step", "name", "width", "height"]].values.tolist() == [[0, "clean", 12, 8], [20, "output", 12, 8]]
    assert store.artifact_bytes(a.loc[0, "sha256"]) == png(1)
    assert store.artifact_path(a.loc[1, "sha256"]).read_bytes() == png(2)
    assert store.artifacts(names=["output"])["step"].tolist() == [20]
    assert store.artifact("r1", "output") == png(2)
    assert store.artifact("r1", "output", step=5) is None
    assert store.artifact("r1", "clean", step=100) == png(1)

    assert store.done_ids(["r1", "r2", "nope"]) == {"r1"} == store.done_ids("r1")
    assert store.counts("s1") == {**{s: 0 for s in STATUSES}, "done": 1, "pending": 1}
    assert store.counts() == store.counts("s1")


def test_png_header_size_matches_pillow():
    from PIL import Image

    data = png(3, h=17, w=31)
    assert png_size(data) == (31, 17) == Image.open(io.BytesIO(data)).size
    with pytest.raises(ValueError, match="not PNG"):
        png_size(b"GIF89a......................")


def test_nan_metric_and_summary(store):
    store.register_runs("s", [run("r")])
    store.start_run("r")
    store.log_metrics("r", 1, {"loss": float("nan"), "psnr": float("inf")})
    store.finish_run("r", "done", summary={"status": "diverged", "best_psnr": float("nan"), "at": 7})
    m = store.metrics().set_index("name")["value"]
    assert math.isnan(m["loss"]) and m["psnr"] == math.inf
    df = store.runs()
    assert df.loc[0, "status"] == "diverged"
    assert df.attrs["summary_columns"] == ["best_psnr", "at"] and pd.isna(df.loc[0, "best_psnr"])


def test_name_collisions_are_prefixed(store):
    store.register_runs("s", [{"run_id": "r", "kind": "k", "params": {"status": "x", "seed": 1}}])
    store.finish_run("r", "error", summary={"seed": 2, "node": "n"}, error="boom")
    df = store.runs()
    assert df.attrs["param_columns"] == ["param_status", "seed"]
    assert df.attrs["summary_columns"] == ["summary_seed", "summary_node"]
    row = df.iloc[0]
    assert (row["status"], row["param_status"], row["seed"], row["summary_seed"], row["error"]) == (
        "error", "x", 1, 2, "boom")


def test_runs_filters(store):
    store.register_runs("a", [run("r1", loss="l1"), run("r2", loss="l2", depth=4),
                              {"run_id": "g1", "kind": "gan", "params": {"space": "w", "region": None}}])
    store.register_runs("b", [run("r2", loss="l2", depth=4), run("r3", loss="kl", region=32)])
    store.start_run("r3")
    df = store.runs()
    assert df["run_id"].tolist() == ["r1", "r2", "g1", "r3"]  # registration order
    assert df.set_index("run_id")["sweep"].to_dict() == {"r1": "a", "r2": "a,b", "g1": "a", "r3": "b"}
    b = store.runs(sweep="b")
    assert b["run_id"].tolist() == ["r2", "r3"] and set(b["sweep"]) == {"b"}
    assert store.runs(kind="gan")["run_id"].tolist() == ["g1"]
    assert store.runs(kind="gan").attrs["param_columns"] == ["space", "region"]
    assert store.runs(status="running")["run_id"].tolist() == ["r3"]
    assert store.runs(status=["running", "pending"], kind=["dip"])["run_id"].tolist() == ["r1", "r2", "r3"]
    assert store.runs(where={"loss": ["l1", "kl"]})["run_id"].tolist() == ["r1", "r3"]
    assert store.runs(where={"depth": 4, "loss": "l2"})["run_id"].tolist() == ["r2"]
    assert store.runs(where={"region": None})["run_id"].tolist() == ["g1"]
    assert store.runs(where={"region": [None, 32]})["run_id"].tolist() == ["g1", "r3"]
    assert store.runs(sweep="a", where={"depth": 2})["run_id"].tolist() == ["r1"]
    assert store.runs(sweep="zzz").empty


# ---------------------------------------------------------------------------- idempotency & lifecycle


def test_same_writes_twice_give_same_rows(store):
    fill(store)
    first = tables(store)
    # the same writes again, minus start_run (which deliberately begins a new attempt)
    store.upsert_sweep("s1", "kind: dip\n", "host-a")
    store.register_runs("s1", [run("r1", sigma=0.1, region=None), run("r2", depth=4, sigma=0.5, region=32)])
    store.log_metrics("r1", 0, {"psnr": 10.0, "loss": 0.5})
    store.log_metrics("r1", 10, {"psnr": 20.0, "loss": 0.25})
    store.log_metrics_many("r1", [(20, "psnr", 25.0), (20, "loss", 0.125), (20, "ssim", 0.75)])
    store.log_artifact("r1", 0, "clean", png(1))
    store.log_artifact("r1", 20, "output", png(2))
    store.finish_run("r1", "done", summary={"best_psnr": 25.0, "best_step": 20, "note": "ok"})
    assert tables(store) == first
    # a whole second attempt of the run, replayed, gives the same rows too
    other = Store(store.root.parent / "other")
    fill(other)
    fill(other)
    assert tables(other) == first


def test_log_metrics_replaces_value(store):
    store.register_runs("s", [run("r")])
    store.log_metrics("r", 5, {"psnr": 1.0})
    store.log_metrics_rows([("r", 5, "psnr", 2.0), ("r", 6, "psnr", 3.0)])
    assert store.metrics()[["step", "value"]].values.tolist() == [[5, 2.0], [6, 3.0]]


def test_start_run_clears_previous_attempt(store):
    fill(store)
    files = sorted(p.name for p in store.artifact_dir.rglob("*.png"))
    assert store.start_run("r1", node="node-2", force=True) is True  # --force reruns a done run
    df = store.runs().set_index("run_id")
    assert df.loc["r1", "status"] == "running" and df.loc["r1", "node"] == "node-2"
    assert df.loc["r1", "attempts"] == 2 and pd.isna(df.loc["r1", "finished_at"])
    assert df.attrs["summary_columns"] == []  # old summary gone
    assert store.metrics(["r1"]).empty and store.artifacts(["r1"]).empty
    assert sorted(p.name for p in store.artifact_dir.rglob("*.png")) == files  # shared files stay
    store.log_metrics("r1", 0, {"psnr": 11.0})
    assert store.metrics(["r1"])["value"].tolist() == [11.0]


def test_done_only_from_finish_and_survives_register(store):
    store.register_runs("s1", [run("r")])
    assert store.runs().loc[0, "status"] == "pending"
    store.start_run("r")
    store.log_metrics("r", 0, {"psnr": 1.0})
    store.log_artifact("r", 0, "output", png())
    assert store.runs().loc[0, "status"] == "running" and store.done_ids(["r"]) == set()
    store.finish_run("r", "done", summary={"best_psnr": 1.0})
    assert store.done_ids(["r"]) == {"r"}
    assert store.register_runs("s1", [run("r")]) == 0
    assert store.register_runs("s2", [run("r"), run("new")]) == 1
    df = store.runs().set_index("run_id")
    assert df.loc["r", "status"] == "done" and df.loc["r", "sweep"] == "s1,s2"
    assert df.loc["r", "best_psnr"] == 1.0 and len(store.metrics(["r"])) == 1
    assert df.loc["new", "status"] == "pending"
    assert store.counts("s2") == {**{s: 0 for s in STATUSES}, "done": 1, "pending": 1}


def test_register_leaves_running_and_error_runs(store):
    store.register_runs("s", [run("a"), run("b")])
    store.start_run("a")
    store.start_run("b")
    store.finish_run("b", "error", error="Traceback: boom")
    store.register_runs("s", [run("a"), run("b")])
    df = store.runs().set_index("run_id")
    assert df.loc["a", "status"] == "running"
    assert (df.loc["b", "status"], df.loc["b", "error"]) == ("error", "Traceback: boom")


def test_mark_unfinished(store):
    store.register_runs("s", [run("a"), run("b"), run("c"), run("d")])
    for r in "abc":
        store.start_run(r)
    store.finish_run("c", "done", summary={})
    assert store.mark_unfinished(["a", "b", "c", "d"]) == 2
    assert store.runs()["status"].tolist() == ["interrupted", "interrupted", "done", "pending"]
    with pytest.raises(ValueError):
        store.mark_unfinished(["a"], status="done")


def test_bad_inputs_fail_clearly(store):
    with pytest.raises(KeyError, match="register_runs"):
        store.start_run("ghost")
    with pytest.raises(KeyError):
        store.finish_run("ghost", "done")
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: metrics of an unknown run
        store.log_metrics("ghost", 0, {"psnr": 1.0})
    store.register_runs("s", [run("r")])
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish_run("r", "finished")
    with pytest.raises(KeyError):
        store.set_sweep_status("nope", "done")
    with pytest.raises(ValueError, match="not PNG"):
        store.log_artifact("r", 0, "x", b"not a png at all, definitely")
    assert store.runs().loc[0, "status"] == "pending"


def test_batch_is_one_transaction_and_nests(store):
    store.register_runs("s", [run("r")])
    with pytest.raises(RuntimeError):
        with store.batch():
            store.log_metrics("r", 0, {"a": 1.0})
            raise RuntimeError
    assert store.metrics().empty
    with store.batch():
        store.log_metrics("r", 0, {"a": 1.0})
        try:
            with store.batch():
                store.log_metrics("r", 1, {"a": 2.0})
                raise RuntimeError
        except RuntimeError:
            pass
        store.log_metrics("r", 2, {"a": 3.0})
        # another process sees nothing until the outer block commits
        assert subprocess_count(store) == 0
    assert store.metrics()["step"].tolist() == [0, 2]


def subprocess_count(store: Store) -> int:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3
        c = sqlite3.connect({str(store.db_path)!r})
        print(c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0])""")],
        capture_output=True, text=True, check=True)
    return int(out.stdout)


# ---------------------------------------------------------------------------- artifacts


def test_identical_images_stored_once(store):
    store.register_runs("s", [run("a"), run("b")])
    sha_a = store.log_artifact("a", 0, "clean", png(7))
    sha_b = store.log_artifact("b", 3, "clean", png(7))
    sha_c = store.log_artifacts_many("b", [(5, "output", png(8)), (6, "output", png(7))])
    assert sha_a == sha_b == sha_c[1] != sha_c[0]
    files = sorted(store.artifact_dir.rglob("*"))
    pngs = [p for p in files if p.is_file()]
    assert len(pngs) == 2 and all(p.suffix == ".png" for p in pngs)  # no temp files left
    path = store.artifact_path(sha_a)
    assert path == store.root / "artifacts" / sha_a[:2] / f"{sha_a}.png"
    assert len(store.artifacts()) == 4 and store.artifacts()["sha256"].nunique() == 2


def test_missing_or_truncated_artifact_file(store):
    store.register_runs("s", [run("a")])
    sha = store.log_artifact("a", 0, "clean", png(1))
    store.artifact_path(sha).unlink()
    assert store.artifact_bytes(sha) is None and store.artifact("a", "clean") is None
    assert store.artifact_bytes("0" * 64) is None
    with pytest.raises(ValueError):
        store.artifact_bytes("../../etc/passwd")
    store.artifact_path(sha).write_bytes(png(1)[:10])  # damaged file is rewritten on next log
    store.log_artifact("a", 1, "clean", png(1))
    assert store.artifact_bytes(sha) == png(1)


# ---------------------------------------------------------------------------- concurrency


WRITER = """
import sys, time
import numpy as np
from priorlab.analysis.store import Store
from synthetic import encode_png
store = Store(sys.argv[1])
store.upsert_sweep("live", "", "writer")
deadline = time.time() + float(sys.argv[2])
i = 0
while time.time() < deadline:
    rid = f"run-{i:05d}"
    store.register_runs("live", [{"run_id": rid, "kind": "dip", "params": {"i": i, "arch": "a"}}])
    store.start_run(rid, node="w")
    for chunk in range(5):
        store.log_metrics_many(rid, [(s, n, s * 0.5) for s in range(chunk * 10, chunk * 10 + 10)
                                     for n in ("psnr", "ssim", "loss", "psnr_ema")])
    store.log_artifact(rid, 49, "output", encode_png(np.full((4, 4, 3), i % 256, np.uint8)))
    with store.batch():  # a writer actor's last batch: final rows and the finish together
        store.log_metrics(rid, 50, {"psnr": 1.0})
        store.finish_run(rid, "done", summary={"best_psnr": float(i)})
    i += 1
print(i)
"""


def test_other_process_reads_while_writer_writes(store):
    # The writer imports the test helpers (tests/synthetic.py): put tests/ on its path, as pytest does here.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), str(ROOT),
                                                                    os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), "2.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    polls = seen_done = 0
    try:
        while proc.poll() is None:
            df = store.runs(sweep="live")
            counts = store.counts("live")
            assert sum(counts.values()) >= len(df)
            done = df.loc[df["status"] == "done", "run_id"].tolist()
            if done:
                last = done[-3:]
                m = store.metrics(run_ids=last)
                # `done` is committed with (after) every row of its run: all 201 rows are there
                assert m.groupby("run_id").size().reindex(last).tolist() == [201] * len(last)
                assert len(store.artifacts(run_ids=last)) == len(last)
                seen_done = max(seen_done, len(done))
            store.sweeps()
            polls += 1
    finally:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    n = int(out)
    print(f"polls={polls} seen_done={seen_done} written={n}")
    assert polls >= 5 and seen_done > 0 and n > 0
    assert store.counts("live")["done"] == n and len(store.metrics()) == 201 * n


def test_reader_threads_while_writer_thread_writes(store):
    store.register_runs("s", [run(f"r{i}") for i in range(20)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def write():
        k = 0
        while not stop.is_set():
            store.log_metrics_rows([(f"r{k % 20}", k, n, 1.0) for n in "abcd"])
            k += 1

    def read():
        try:
            while not stop.is_set():
                store.runs()
                store.metrics(run_ids=["r1", "r2"])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert not errors and len(store.metrics()) > 0


def test_store_pickles_by_path(store):
    import pickle

    fill(store)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == store.root and copy.done_ids(["r1"]) == {"r1"}


# ---------------------------------------------------------------------------- migrations


def test_v0_database_is_migrated(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    sqlite3.connect(root / "priorlab.db").close()  # an empty file: version 0
    store = Store(root)
    assert store.schema_version == SCHEMA_VERSION
    fill(store)


def _v_next(conn):
    conn.execute("ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT ''")
    conn.execute("UPDATE runs SET tags = kind || ':' || status")


def test_older_database_is_migrated_forward(tmp_path, monkeypatch):
    store = Store(tmp_path / "s")
    fill(store)
    store.close()
    before = tables(store)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, _v_next])
    newer = Store(tmp_path / "s")
    assert newer.schema_version == SCHEMA_VERSION + 1
    assert tables(newer) == before  # data kept, reads still work
    with sqlite3.connect(newer.db_path) as c:
        assert dict(c.execute("SELECT run_id, tags FROM runs")) == {"r1": "dip:done", "r2": "dip:pending"}
        assert [r[0] for r in c.execute("SELECT version FROM schema_version ORDER BY version")] == \
            list(range(1, SCHEMA_VERSION + 2))
    assert newer.runs().shape[0] == 2


def test_failed_migration_leaves_old_version(tmp_path, monkeypatch):
    fill(Store(tmp_path / "s"))

    def broken(conn):
        conn.execute("ALTER TABLE runs ADD COLUMN half TEXT")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(tmp_path / "s")
    monkeypatch.undo()
    store = Store(tmp_path / "s")
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.db_path) as c:
        assert "half" not in [r[1] for r in c.execute("PRAGMA table_info(runs)")]


def test_newer_database_is_a_clear_error(tmp_path):
    Store(tmp_path / "s")
    with sqlite3.connect(tmp_path / "s" / "priorlab.db") as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(SchemaVersionError, match=rf"version {SCHEMA_VERSION + 5}.*newer priorlab"):
        Store(tmp_path / "s")


# ---------------------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trip(store, tmp_path, fmt):
    fill(store)
    store.register_runs("s2", [{"run_id": "m", "kind": "dip", "params": {"arch": 3, "depth": 2}}])  # mixed types
    path = store.export_runs(tmp_path / "out" / f"runs.{fmt}", format=fmt)
    back = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    df = store.runs()
    assert list(back.columns) == list(df.columns) and len(back) == 3
    assert back["run_id"].tolist() == df["run_id"].tolist()
    assert back["status"].tolist() == df["status"].tolist()
    assert back["depth"].tolist() == [2, 4, 2]
    assert back.loc[0, "best_psnr"] == 25.0 and pd.isna(back.loc[1, "best_psnr"])
    assert [str(v) for v in back["arch"]] == ["arch1", "arch1", "3"]
    only = store.export_runs(tmp_path / f"s1.{fmt}", sweep="s1")  # format from the suffix
    again = pd.read_csv(only) if fmt == "csv" else pd.read_parquet(only)
    assert again["run_id"].tolist() == ["r1", "r2"]
    with pytest.raises(ValueError):
        store.export_runs(tmp_path / "x.json", format="json")


# ---------------------------------------------------------------------------- synthetic & imports


def test_synthetic_store_is_plausible(tmp_path):
    store = make_synthetic_store(tmp_path / "syn", n_runs=540, n_steps=8)
    df = store.runs()
    assert len(df) == 540 and store.counts()["done"] > 500
    assert {"arch", "depth", "sigma", "loss", "task", "region", "image", "seed"} <= set(df.attrs["param_columns"])
    assert {"best_psnr", "final_psnr", "best_ssim"} <= set(df.attrs["summary_columns"])
    done = df[df.status == "done"]
    by = done.groupby("loss")["best_psnr"].mean()
    assert by["l2"] > by["l1"] > by["kl"] + 3
    assert done.groupby("depth")["best_psnr"].mean().is_monotonic_decreasing
    assert done.groupby("sigma")["best_psnr"].mean()[0.1] > done.groupby("sigma")["best_psnr"].mean()[0.5]
    one = done["run_id"].iloc[0]
    assert set(store.metrics([one])["name"]) == {"psnr", "ssim", "loss", "psnr_ema"}
    assert len(store.metrics([one])) == 32
    arts = store.artifacts()
    assert arts["sha256"].nunique() < 60 and len(arts) > 2000
    assert store.artifact_bytes(arts["sha256"].iloc[0])[:4] == b"\x89PNG"
    assert set(store.sweeps()["name"]) == {"synthetic-denoise", "synthetic-inpaint", "synthetic-smoke"}


def test_analysis_imports_no_torch_or_ray():
    code = "import sys, priorlab.analysis, priorlab.analysis.store; " \
           "print(sorted(m for m in ('torch', 'ray', 'PIL', 'streamlit') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
