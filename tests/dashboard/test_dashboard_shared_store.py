"""The dashboard on a shared store (PostgreSQL + S3-compatible files, real servers): the pages
read it as they read a folder, follow another driver's writes live, and never show credentials."""

from __future__ import annotations

from apptest_helpers import assert_ok, open_page
from test_dashboard_hardening import small_store

from priorlab.analysis.store import Store
from priorlab.analysis.store.copy import copy_store


def texts(at) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in at.main.children.values()) + \
        " ".join(str(e.value) for e in at.sidebar.caption)


def test_pages_read_a_postgres_store_and_follow_another_driver_live(monkeypatch, tmp_path, pg_url, s3_url):
    small_store(tmp_path / "f", sweep="first").close()
    assert copy_store(tmp_path / "f", pg_url, artifacts=s3_url).clean
    monkeypatch.setenv("PRIORLAB_ARTIFACTS", s3_url)
    monkeypatch.setenv("PGPASSWORD", "not-shown")
    at = open_page(monkeypatch, pg_url, "sweeps")
    assert_ok(at)
    assert "first" in " ".join(s.value for s in at.subheader)
    assert "not-shown" not in texts(at)
    for page, query in (("runs", {}), ("compare", {"runs": "run0,run1"})):
        assert_ok(open_page(monkeypatch, pg_url, page, **query))

    other = Store(pg_url, artifacts=s3_url)  # a second driver, elsewhere, starts a sweep
    other.upsert_sweep("second", "kind: dip\n", "host-b")
    other.register_runs("second", [{"run_id": "new0", "kind": "dip", "params": {"arch": "skip", "depth": 1}}])
    at.run()
    assert_ok(at)
    assert {"first", "second"} <= {s.value for s in at.subheader}
