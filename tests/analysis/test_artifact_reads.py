"""Readers read only regular files where artifacts belong, with a size cap: a link to
/dev/zero or a FIFO never makes the dashboard read forever or block (issue 16, item 14)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from priorlab.analysis.store import Store, StoreError
from priorlab.analysis.store.files import MAX_ARTIFACT_BYTES
from synthetic import encode_png


def stored(tmp_path, n: int) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "s")
    store.register_runs("s", [{"run_id": "r", "kind": "dip", "params": {}}])
    shas = [store.log_artifact("r", i, "output", encode_png(np.full((4, 4, 3), i, np.uint8))) for i in range(n)]
    return store, shas


@pytest.mark.timeout(60)
def test_links_devices_fifos_and_huge_files_are_refused_without_reading(tmp_path):
    store, (zero, fifo, big, link) = stored(tmp_path, 4)
    p = store.artifact_path
    p(zero).unlink()
    p(zero).symlink_to("/dev/zero")
    p(fifo).unlink()
    os.mkfifo(p(fifo))
    with open(p(big), "r+b") as f:  # sparse: no disk used
        f.truncate(MAX_ARTIFACT_BYTES + 1)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not the store's")
    p(link).unlink()
    p(link).symlink_to(outside)
    for sha, why in ((zero, "symbolic link"), (fifo, "not a regular file"), (big, "more than any artifact"),
                     (link, "symbolic link")):
        with pytest.raises(StoreError, match=why):
            store.artifact_bytes(sha)


@pytest.mark.timeout(60)
def test_the_dashboard_shows_a_refused_artifact_as_missing(tmp_path, monkeypatch):
    from priorlab.dashboard import data

    store, (sha,) = stored(tmp_path, 1)
    store.artifact_path(sha).unlink()
    os.mkfifo(store.artifact_path(sha))
    assert data.artifact_png(str(store.root), sha) is None
