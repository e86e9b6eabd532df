"""Faults around a sweep must never lose or corrupt a result: a run another sweep finished is
not reset, and a trial whose worker process dies is an error with Ray's account of it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from priorlab.analysis.store import Store
from priorlab.cluster.config import load
from priorlab.cluster.expand import expand
from priorlab.cluster.sweep import EXIT_FAILED, EXIT_OK, run_sweep

TINY_DIP = textwrap.dedent("""
    name: {name}
    kind: dip
    fixed: {{image: astronaut, size: 16, width: 4, depth: 1, iterations: 10, log_every: 5, snapshots: [10]}}
    grid: {{seed: [0, 1]}}
    resources: {{cpu: 1, custom: {{slot: 1}}}}
    """)


def _config(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_run_finished_by_another_sweep_is_not_reset(ray_cluster, tmp_path, monkeypatch):
    store_dir = tmp_path / "store"
    first = _config(tmp_path, "first", TINY_DIP.format(name="first"))
    assert run_sweep(str(first), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    ids = [t["run_id"] for t in expand(load(first)[0])]
    store = Store(store_dir)
    before = store.runs().set_index("run_id")
    metrics_before = store.metrics(ids)
    assert (before["status"] == "done").all() and not metrics_before.empty

    # A second sweep over the same runs that decided what to run before the first one
    # finished them: at its start it saw none of them done.
    second = _config(tmp_path, "second", TINY_DIP.format(name="second"))
    monkeypatch.setattr(Store, "done_ids", lambda self, run_ids: set())
    assert run_sweep(str(second), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    after = store.runs().set_index("run_id")
    for rid in ids:  # the first sweep's results, untouched
        assert after.loc[rid, "status"] == "done"
        assert after.loc[rid, "attempts"] == before.loc[rid, "attempts"] == 1
        assert after.loc[rid, "finished_at"] == before.loc[rid, "finished_at"]
        assert after.loc[rid, "best_psnr"] == before.loc[rid, "best_psnr"]
    assert store.metrics(ids).equals(metrics_before)
    assert set(store.runs(sweep="second")["run_id"]) == set(ids)

    # --force still reruns them.
    assert run_sweep(str(second), store_dir=str(store_dir), force=True, echo=lambda s: None) == EXIT_OK
    forced = store.runs().set_index("run_id")
    assert (forced.loc[ids, "attempts"] == 2).all() and (forced.loc[ids, "status"] == "done").all()
    assert set(store.metrics(ids)["run_id"]) == set(ids)


def _failing_sweep(cfg: Path, store: Path, name: str):
    """Run a sweep in which a worker dies: it fails (exit 1), never asks to be resumed."""
    lines: list[str] = []
    status = run_sweep(str(cfg), store_dir=str(store), echo=lines.append)
    out = "\n".join(lines)
    assert status == EXIT_FAILED, out
    assert "run the same command again" not in out
    return out, Store(store, readonly=True).runs(sweep=name)


def test_trial_whose_process_dies_is_an_error_and_the_sweep_fails(ray_cluster, tmp_path):
    # A classifier plug-in (tests/fault_plugins.py) that SIGKILLs its own worker process;
    # the other run of the sweep has no classifier and finishes.
    cfg = _config(tmp_path, "dies", textwrap.dedent("""
        name: dies
        kind: stylegan-sample
        fixed: {generator: "random:16", n: 2}
        groups:
          - name: fine
          - name: dying
            fixed: {seed: 1, classifier: {source: "python:tests.fault_plugins:die"}}
        resources: {cpu: 1, custom: {slot: 1}}
        """))
    out, runs = _failing_sweep(cfg, tmp_path / "store", "dies")
    dying = runs[runs["classifier"].notna()]
    fine = runs[runs["classifier"].isna()]
    assert len(dying) == 1 and len(fine) == 1
    assert (fine["status"] == "done").all()
    assert dying["status"].tolist() == ["error"]
    error = dying["error"].iloc[0]
    # Ray's own account of the death, then our one-line summary of it.
    assert "ActorDiedError" in error or "actor died" in error.lower(), error
    assert error.splitlines()[-1].startswith("the trial's worker process died before recording a result: ")
    assert f"error in {dying['run_id'].iloc[0]}" in out


def test_a_dying_pack_leaves_every_member_it_was_fitting_as_an_error(ray_cluster, tmp_path):
    cfg = _config(tmp_path, "pack-dies", textwrap.dedent("""
        name: pack-dies
        kind: dip
        fixed: {image: astronaut, size: 16, width: 4, depth: 1, iterations: 10, log_every: 5, snapshots: [10]}
        grid: {loss: [l2, "tests.fault_plugins:die_in_fit"]}
        pack: 2
        resources: {cpu: 1, custom: {slot: 1}}
        """))
    _, runs = _failing_sweep(cfg, tmp_path / "store", "pack-dies")
    assert len(runs) == 2 and runs["status"].tolist() == ["error", "error"], runs[["loss", "status", "error"]]
    assert all(e.splitlines()[-1].startswith("the trial's worker process died") for e in runs["error"])
