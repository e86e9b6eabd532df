"""A run another live sweep is running is never taken over; a dead or lapsed claim is; a run
whose rows fall short of what its trial sent never ends `done` (issue 16, items 1 and 2)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from priorlab.analysis import claims
from priorlab.analysis.check import check_store
from priorlab.analysis.store import Store
from synthetic import encode_png


def png(seed: int = 0) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (8, 12, 3), dtype=np.uint8))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s")
    s.register_runs("a", [{"run_id": "r1", "kind": "dip", "params": {"seed": 0}}])
    s.register_runs("b", [{"run_id": "r1", "kind": "dip", "params": {"seed": 0}}])
    return s


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_sweeps_run_is_not_taken_over_even_forced(store):
    a, b = claims.owner_id("sweep-a"), claims.owner_id("sweep-b")
    assert store.start_run("r1", node="n-a", owner=a)
    store.log_metrics("r1", 10, {"psnr": 20.0})
    store.log_artifact("r1", 10, "output", png(1))
    for force in (False, True):
        assert store.start_run("r1", node="n-b", owner=b, force=force) is False
    assert store.mark_unfinished(["r1"], owner=b) == 0  # B stopping never marks A's run
    assert store.run_status(["r1"]) == {"r1": "running"}
    store.log_metrics("r1", 20, {"psnr": 21.0})
    assert store.finish_run("r1", "done", {"best_psnr": 21.0}, owner=a, sent=(2, 1))
    run = store.runs().set_index("run_id").loc["r1"]
    assert (run["status"], run["node"], run["attempts"]) == ("done", "n-a", 1)
    assert len(store.metrics(["r1"])) == 2 and len(store.artifacts(["r1"])) == 1


def test_a_dead_drivers_claim_is_reclaimable_at_once(store):
    dead = f"{claims.owner_id().split(':')[0]}:{dead_pid()}:gone"
    assert store.start_run("r1", owner=dead)
    store.log_metrics("r1", 10, {"psnr": 20.0})
    assert store.start_run("r1", owner=claims.owner_id("b"))
    assert store.metrics(["r1"]).empty  # the new attempt starts clean
    # and the dead owner's late writes cannot finish the new attempt
    assert store.finish_run("r1", "done", {"best_psnr": 1.0}, owner=dead) is False
    assert store.run_status(["r1"]) == {"r1": "running"}


def test_a_sweep_that_ended_in_a_living_process_leaves_its_claims_free_at_once(store):
    # A notebook's sweep that failed because the store went away could not release its runs;
    # the same cell run again (same process, so its owner's pid lives) used to wait LEASE_S.
    ended, again = claims.owner_id("failed-sweep"), claims.owner_id("same-cell-again")
    assert store.start_run("r1", owner=ended)
    assert store.start_run("r1", owner=again) is False  # while that sweep runs, its run is its own
    claims.end_owner(ended)
    assert ended in claims.ended_owners()
    assert store.start_run("r1", owner=again)
    assert store.finish_run("r1", "done", {"best_psnr": 1.0}, owner=ended) is False  # fenced


def test_a_claim_from_another_machine_holds_until_its_lease_lapses(store):
    remote = "some-other-host:1:x"
    assert store.start_run("r1", owner=remote)
    assert store.start_run("r1", owner=claims.owner_id("b")) is False
    with store.batch() as c:  # its driver stopped renewing LEASE_S ago
        c.execute("UPDATE runs SET lease_until = ? WHERE run_id = 'r1'", (time.time() - 1,))
    assert store.start_run("r1", owner=claims.owner_id("b"))


def test_the_lease_is_renewed_while_its_owner_lives(store):
    owner = claims.owner_id("a")
    assert store.start_run("r1", owner=owner)
    with store.batch() as c:
        c.execute("UPDATE runs SET lease_until = ? WHERE run_id = 'r1'", (time.time() + 0.5,))
    lease = claims.Lease(store, owner, every=0.1)
    try:
        time.sleep(1.0)
        assert store.start_run("r1", owner="some-other-host:1:y") is False
    finally:
        lease.stop()


def test_finish_with_fewer_rows_than_sent_is_an_error_and_check_flags_short_done_runs(store, tmp_path):
    assert store.start_run("r1")
    store.log_metrics("r1", 10, {"psnr": 20.0})
    store.finish_run("r1", "done", {"best_psnr": 20.0}, sent=(12, 6))
    run = store.runs().set_index("run_id").loc["r1"]
    assert run["status"] == "error" and "only 1 of 12 metric rows and 0 of 6 artifacts" in run["error"]

    # A done run whose rows went missing afterwards (or were never all written): check says so.
    store.start_run("r1")
    store.log_metrics("r1", 10, {"psnr": 20.0})
    store.log_metrics("r1", 20, {"psnr": 21.0})
    store.finish_run("r1", "done", {"best_psnr": 21.0}, sent=(2, 0))
    assert check_store(store.root).clean
    with store.batch() as c:
        c.execute("DELETE FROM metrics WHERE run_id = 'r1' AND step = 20")
    report = check_store(store.root)
    assert not report.clean
    assert any("r1" in line and "1 of 2 metric rows" in line for line in report.lines()), report.lines()
