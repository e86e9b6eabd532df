"""Adaptive sweeps: random and Optuna search over ranges, ASHA pruning, resume, clear errors.

Real sweeps on the session's two-node cluster with tiny DIP runs (32 px, width 8, 40
iterations logged every 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from priorlab.analysis.store import Store
from priorlab.cluster.config import parse
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.cluster.sweep import EXIT_CONFIG, EXIT_OK, run_sweep

TINY = {"image": "astronaut", "size": 32, "width": 8, "depth": 1, "iterations": 40, "log_every": 10,
        "snapshots": [40], "arch": "seed-double"}
LR = {"loguniform": [1.0e-4, 1.0e-1]}


def config(name: str, grid: dict, **extra) -> dict:
    return {"name": name, "kind": "dip", "fixed": dict(TINY), "grid": grid,
            "resources": {"cpu": 1, "custom": {"slot": 1}}, **extra}


def write(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


def sweep(path: Path, store: Path) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = run_sweep(str(path), store_dir=str(store), echo=lines.append)
    return status, lines


# ---------------------------------------------------------------- expansion (no Ray)

def test_random_search_draws_n_distinct_trials_in_the_ranges_reproducibly():
    body = config("rnd", {"lr": LR, "depth": {"randint": [1, 3]}},
                  search={"type": "random", "num_samples": 6, "seed": 3})
    trials = expand(parse(body))
    lrs = [t["params"]["lr"] for t in trials]
    assert len(trials) == 6 and len(set(t["run_id"] for t in trials)) == 6
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) == 6
    assert {t["params"]["depth"] for t in trials} <= {1, 2}  # randint's upper bound is exclusive, as in Tune
    # The same seed draws the same trials (so a resumed sweep skips the stored ones) ...
    assert [t["run_id"] for t in expand(parse(body))] == [t["run_id"] for t in trials]
    # ... another seed other ones.
    other = expand(parse({**body, "search": {"type": "random", "num_samples": 6, "seed": 4}}))
    assert not {t["run_id"] for t in other} & {t["run_id"] for t in trials}


def test_random_search_repeats_the_list_axes_per_sample():
    body = config("rnd-grid", {"lr": LR, "arch": ["seed-double", "skip"]}, search={"type": "random", "num_samples": 3})
    trials = expand(parse(body))
    assert len(trials) == 6
    assert sorted(t["params"]["arch"] for t in trials) == ["seed-double"] * 3 + ["skip"] * 3


@pytest.mark.parametrize("change, expected", [
    ({"search": {"type": "bayes", "num_samples": 2}}, "search.type = 'bayes': Input should be 'grid', 'random' or 'optuna'"),
    ({"search": {"type": "random"}}, "search type 'random' needs num_samples"),
    ({"search": {"type": "optuna", "num_samples": 2, "mode": "maximize"}}, "search.mode = 'maximize': Input should be 'max' or 'min'"),
    ({"search": {"type": "random", "num_samples": 2, "sampler": "tpe"}}, "search.sampler"),
    ({"scheduler": {"type": "hyperband", "grace_period": 10}}, "scheduler.type = 'hyperband': Input should be 'asha'"),
    ({"scheduler": {"type": "asha"}}, "scheduler.grace_period: Field required"),
    ({"scheduler": {"type": "asha", "grace_period": 40}}, "scheduler.grace_period = 40: must be below max_t (40)"),
    ({"grid": {"lr": LR}}, "grid.lr: a range is sampled, which needs search type random or optuna"),
    ({"grid": {"lr": {"logunif": [1e-4, 1e-1]}}, "search": {"type": "random", "num_samples": 2}},
     "unknown range 'logunif' (did you mean 'loguniform'?); allowed: loguniform, uniform, randint, choice"),
    ({"grid": {"lr": {"loguniform": [1e-1, 1e-4]}}, "search": {"type": "random", "num_samples": 2}},
     "lower bound 0.1 must be below the upper bound 0.0001"),
    ({"grid": {"lr": {"uniform": [-0.1, 0.1]}}, "search": {"type": "random", "num_samples": 2}},
     "grid.lr (uniform bound -0.1): lr = -0.1: Input should be greater than 0"),
    ({"grid": {"width": {"loguniform": [4, 32]}}, "search": {"type": "random", "num_samples": 2}},
     "grid.width: loguniform draws floats but width takes integers; use randint or choice"),
    ({"grid": {"depth": {"randint": [1, 9]}}, "search": {"type": "optuna", "num_samples": 2}},
     "grid.depth (randint bound 8)"),
    ({"grid": {"lr": LR}, "search": {"type": "optuna", "num_samples": 2}, "groups": [{"name": "a"}]},
     "groups are not supported"),
])
def test_bad_search_and_scheduler_blocks_are_one_line_errors(tmp_path, change, expected):
    body = {**config("bad", {"seed": [0]}), **change}
    lines: list[str] = []
    status = run_sweep(str(write(tmp_path / "bad.yaml", body)), store_dir=str(tmp_path / "store"), echo=lines.append)
    assert status == EXIT_CONFIG
    assert len(lines) == 1 and "\n" not in lines[0] and "Traceback" not in lines[0], lines
    assert expected in lines[0], lines


# ---------------------------------------------------------------- real sweeps

def test_asha_prunes_weak_trials_stores_them_pruned_and_resume_skips_them(ray_cluster, tmp_path):
    # One at a time, so the order is fixed (ASHA's decisions depend on who reaches a rung first):
    # the good learning rate runs first and sets the rungs; the tiny ones fall below the cutoff.
    body = config("asha", {"lr": [0.01, 1e-6, 2e-6, 3e-6, 4e-6]},
                  scheduler={"type": "asha", "metric": "psnr", "mode": "max", "grace_period": 10, "reduction_factor": 2},
                  max_concurrent=1)
    path = write(tmp_path / "asha.yaml", body)
    status, lines = sweep(path, tmp_path / "store")
    assert status == EXIT_OK, lines
    store = Store(tmp_path / "store")
    runs = store.runs(sweep="asha")
    pruned = runs[runs["status"] == "pruned"]
    assert len(pruned) >= 2, runs[["lr", "status"]]
    assert set(runs["status"]) <= {"done", "pruned"}, runs[["lr", "status", "error"]]
    assert set(runs.loc[runs["lr"] == 0.01, "status"]) == {"done"}
    assert set(runs.loc[runs["lr"] < 1e-5, "status"]) == {"pruned"}
    # A pruned run keeps what it logged, stopped before the budget.
    m = store.metrics(list(pruned["run_id"]), names=["psnr"])
    assert set(m["run_id"]) == set(pruned["run_id"])
    assert m.groupby("run_id")["step"].max().max() < 40
    assert any("pruned" in l for l in lines), lines
    # Resuming runs nothing: pruned is final, like done.
    status, lines = sweep(path, tmp_path / "store")
    assert status == EXIT_OK
    assert any("5 runs, 5 already done, 0 to run" in l for l in lines), lines
    assert store.runs(sweep="asha")["attempts"].max() == 1


def test_optuna_runs_n_trials_and_a_resume_counts_the_stored_ones(ray_cluster, tmp_path):
    body = config("opt", {"lr": LR, "arch": ["seed-double", "skip"]},
                  search={"type": "optuna", "num_samples": 3, "metric": "best_psnr", "mode": "max", "seed": 1})
    path = write(tmp_path / "opt.yaml", body)
    status, lines = sweep(path, tmp_path / "store")
    assert status == EXIT_OK, lines
    store = Store(tmp_path / "store")
    runs = store.runs(sweep="opt")
    assert len(runs) == 3 and (runs["status"] == "done").all(), runs[["lr", "arch", "status", "error"]]
    assert runs["lr"].between(1e-4, 1e-1).all() and set(runs["arch"]) <= {"seed-double", "skip"}
    assert runs["best_psnr"].notna().all()
    # Same command: nothing to run. A larger budget runs only the difference.
    status, lines = sweep(path, tmp_path / "store")
    assert status == EXIT_OK and len(store.runs(sweep="opt")) == 3
    body["search"]["num_samples"] = 4
    status, lines = sweep(write(path, body), tmp_path / "store")
    assert status == EXIT_OK, lines
    assert any("3 of 4 samples stored, 1 to run" in l for l in lines), lines
    runs = store.runs(sweep="opt")
    assert len(runs) == 4 and runs["attempts"].max() == 1
