"""A resumed sweep finishes what a killed driver left and keeps its results: an Optuna sweep
whose driver was killed completes with exit 0 and no run left `interrupted`, and a diverged
run is a result, not rerun on resume (issue 16, item 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from priorlab.analysis import claims
from priorlab.analysis.store import Store
from priorlab.cluster.sweep import EXIT_OK, run_sweep

TINY = {"image": "astronaut", "size": 16, "width": 4, "depth": 1, "iterations": 10, "log_every": 5, "snapshots": [10]}


def sweep(body: dict, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / f"{body['name']}.yaml"
    path.write_text(yaml.safe_dump(body))
    lines: list[str] = []
    status = run_sweep(str(path), store_dir=str(tmp_path / "store"), echo=lines.append)
    return status, "\n".join(lines)


def killed(store: Store, run_ids: list[str]) -> None:
    """What a SIGKILLed driver leaves: its runs `running` under a claim nobody renews."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    owner = f"{claims.owner_id().split(':')[0]}:{proc.pid}:killed"
    with store.batch() as c:
        for rid in run_ids:
            c.execute("""UPDATE runs SET status = 'running', owner = ?, summary = NULL, finished_at = NULL
                         WHERE run_id = ?""", (owner, rid))
            c.execute("DELETE FROM metrics WHERE run_id = ?", (rid,))


def test_optuna_resume_after_a_killed_driver_finishes_its_runs(ray_cluster, tmp_path):
    body = {"name": "opt", "kind": "dip", "fixed": TINY, "grid": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}},
            "search": {"type": "optuna", "num_samples": 2, "seed": 1},
            "resources": {"cpu": 1, "custom": {"slot": 1}}}
    status, out = sweep(body, tmp_path)
    assert status == EXIT_OK, out
    store = Store(tmp_path / "store")
    first = store.runs(sweep="opt")["run_id"].tolist()
    killed(store, first)  # the kill came while both trials were fitting
    body["search"]["num_samples"] = 3
    status, out = sweep(body, tmp_path)
    assert status == EXIT_OK, out
    assert "interrupted" not in out, out
    runs = store.runs(sweep="opt").set_index("run_id")
    assert len(runs) == 3 and (runs["status"] == "done").all(), runs[["status", "error"]]
    assert (runs.loc[first, "attempts"] == 2).all()  # the killed ones were rerun, not lost


def test_a_diverged_run_is_a_result_not_rerun_on_resume(ray_cluster, tmp_path):
    body = {"name": "div", "kind": "dip", "fixed": {**TINY, "lr": 1.0e30}, "grid": {"seed": [0]},
            "resources": {"cpu": 1, "custom": {"slot": 1}}}
    status, out = sweep(body, tmp_path)
    runs = Store(tmp_path / "store").runs(sweep="div")
    assert runs["status"].tolist() == ["diverged"], out
    assert status == EXIT_OK, out
    status, out = sweep(body, tmp_path)
    assert status == EXIT_OK and "1 already done, 0 to run" in out, out
    assert Store(tmp_path / "store").runs(sweep="div")["attempts"].tolist() == [1]
