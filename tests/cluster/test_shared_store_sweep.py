"""The cluster story with a shared store: a sweep on the two-node Ray cluster writing to
PostgreSQL + an S3-compatible server (real servers, tests/servers.py) through the one writer,
giving what a folder store gets; a database that goes away mid-sweep fails it in one line and
the same command resumes."""

from __future__ import annotations

import threading
import time
import textwrap


from priorlab import vocab
from priorlab.analysis.check import check_store
from priorlab.analysis.schema import StoreError
from priorlab.analysis.store import Store
from priorlab.cluster.cli_errors import first_line
from priorlab.cluster.sweep import EXIT_OK, run_sweep
from test_sweep_cluster import write_config

# Summary keys that measure the machine, not the result.
TIMING = (*vocab.RESOURCE_KEYS, "seconds")  # what a run cost differs from run to run


def results(store: Store, sweep: str) -> dict:
    runs = store.runs(sweep=sweep).set_index("run_id").sort_index()
    summary = [c for c in runs.attrs["summary_columns"] if not c.endswith(TIMING)]
    arts = store.artifacts(list(runs.index))
    return {"summaries": runs[summary].to_dict("index"),
            "images": sorted(zip(arts["run_id"], arts["step"], arts["name"], arts["sha256"]))}


def test_a_sweep_into_postgres_and_s3_gives_what_a_folder_gets(ray_cluster, tmp_path, pg_url, s3_url):
    cfg = write_config(tmp_path / "shared.yaml", "shared", {"seed": [0, 1]}, extra=textwrap.dedent("""
        groups:
          - {name: on-head, fixed: {loss: l1}, resources: {cpu: 1, custom: {head: 1}}}
          - {name: on-worker, fixed: {loss: l2}, resources: {cpu: 1, custom: {worker: 1}}}
        """))
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "folder"), echo=lambda s: None) == EXIT_OK
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=pg_url, artifacts=s3_url, echo=lines.append) == EXIT_OK
    assert any(f"--store {pg_url} --artifacts {s3_url}" in line for line in lines), lines
    shared = Store(pg_url, artifacts=s3_url, readonly=True)
    assert set(shared.runs(sweep="shared")["node"]) == {ray_cluster.head_node.node_id,
                                                       ray_cluster.extra_worker.node_id}
    assert results(shared, "shared") == results(Store(tmp_path / "folder"), "shared")
    assert check_store(pg_url, artifacts=s3_url).clean


def test_a_database_that_goes_away_mid_sweep_fails_in_one_line_and_the_same_command_resumes(
        ray_cluster, tmp_path, pg_server, pg_url, s3_url):
    # One run at a time, so that five are still to come when the first `done` is seen (two at a
    # time, the fast writer let the whole sweep finish between two looks).
    cfg = write_config(tmp_path / "outage.yaml", "outage", {"seed": list(range(6))}, fixed={"iterations": 40},
                       extra="max_concurrent: 1\n")
    outcome: dict = {}

    def sweep():
        try:
            outcome["code"] = run_sweep(str(cfg), store_dir=pg_url, artifacts=s3_url, echo=lambda s: None)
        except StoreError as e:  # what `priorlab sweep` prints as its one line (exit 2)
            outcome["error"] = first_line(e)

    thread = threading.Thread(target=sweep)
    thread.start()
    reader: list[Store] = []

    def n_done() -> int:
        try:
            if not reader:
                reader.append(Store(pg_url, artifacts=s3_url, readonly=True))
            return reader[0].counts("outage")["done"]
        except StoreError:  # the sweep has not created the schema yet
            return 0

    deadline = time.time() + 240
    while time.time() < deadline and not n_done():
        time.sleep(0.1)
    pg_server.stop()
    try:
        thread.join(timeout=300)
        assert not thread.is_alive()
    finally:
        pg_server.start()
    assert outcome and outcome.get("code") != EXIT_OK  # failed, and not with a traceback
    if "error" in outcome:
        assert "PostgreSQL store" in outcome["error"], outcome
    assert run_sweep(str(cfg), store_dir=pg_url, artifacts=s3_url, echo=lambda s: None) == EXIT_OK
    store = Store(pg_url, artifacts=s3_url)
    runs = store.runs(sweep="outage")
    assert len(runs) == 6 and set(runs["status"]) == {"done"}
    m = store.metrics(list(runs["run_id"]))
    assert not m.duplicated(["run_id", "step", "name"]).any()
    assert check_store(pg_url, artifacts=s3_url).clean
