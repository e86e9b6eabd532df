"""Issue 18: `--plan` decides with the sweep's own code path; a sweep with nothing to run never
starts Ray; `--only RUN_ID` reruns single runs (what `priorlab check` advises).

The stores here are written with the store's own API (no Ray): each test states what a real
sweep would have left behind."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from priorlab.analysis.store import Store
from priorlab.cluster import config as sweep_config
from priorlab.cluster.expand import expand
from priorlab.cluster.cli import main

RANDOM_ASHA = textwrap.dedent("""
    name: asha
    kind: dip
    fixed: {image: astronaut, size: 32, width: 8, iterations: 40, log_every: 10, task: denoise}
    search: {type: random, num_samples: 3, seed: 0}
    scheduler: {type: asha, metric: psnr_ema, mode: max, grace_period: 10, reduction_factor: 2}
    grid:
      lr: {loguniform: [1.0e-4, 1.0e-1]}
      arch: [skip, seed-double]
    """)


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def stored(cfg_path: Path, store_dir: Path, statuses: dict[int, str] | None = None, default: str = "done") -> list:
    """The store a finished sweep of `cfg_path` leaves: every run final (`statuses` by index)."""
    cfg, text = sweep_config.load(cfg_path)
    trials = expand(cfg)
    store = Store(store_dir)
    store.upsert_sweep(cfg.name, text, "host", status="done")
    store.register_runs(cfg.name, trials)
    for i, t in enumerate(trials):
        store.start_run(t["run_id"])
        store.log_metrics(t["run_id"], 10, {"psnr": 20.0 + i, "psnr_ema": 19.0 + i})
        status = (statuses or {}).get(i, default)
        if status == "pruned":
            store.mark_unfinished([t["run_id"]], "pruned")
        else:
            store.finish_run(t["run_id"], status, {"best_psnr": 20.0 + i, "input_psnr": 12.0})
    store.close()
    return trials


def test_plan_counts_pruned_runs_as_final_like_the_sweep(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    trials = stored(cfg_path, tmp_path / "s", statuses={0: "pruned", 1: "pruned", 2: "pruned", 3: "pruned"})
    assert main(["sweep", str(cfg_path), "--plan", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert f"{len(trials)} runs, {len(trials)} already final" in out and "0 to run" in out, out
    assert "nothing to run" in out


def test_plan_refuses_a_changed_config_under_a_stored_name_as_the_sweep_does(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    stored(cfg_path, tmp_path / "s")
    changed = write(tmp_path, RANDOM_ASHA.replace("size: 32", "size: 64"), "changed.yaml")
    assert main(["sweep", str(changed), "--plan", "--store", str(tmp_path / "s")]) == 2
    assert "already in" in capsys.readouterr().out
    assert main(["sweep", str(changed), "--plan", "--extend", "--store", str(tmp_path / "s")]) == 0


def test_plan_lists_every_sampled_value_with_its_significant_digits(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    trials = expand(sweep_config.load(cfg_path)[0])
    assert main(["sweep", str(cfg_path), "--plan", "--store", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    for t in trials:
        line = next(line for line in out.splitlines() if t["run_id"] in line)
        assert f"lr={t['params']['lr']:.4g}" in line and f"arch={t['params']['arch']}" in line, line
    assert "search: random" in out and "asha" in out


def test_plan_lists_stylegan_shard_trials_and_keeps_columns_for_long_kind_names(tmp_path, capsys):
    text = (Path(__file__).resolve().parents[2] / "configs" / "stylegan_smoke.yaml").read_text()
    cfg_path = write(tmp_path, text)
    assert main(["sweep", str(cfg_path), "--plan", "--store", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\s+[0-9a-f]{16}(-s\d+)?\s", line)]
    assert sum("scores shard" in r for r in rows) == 2, out
    # The "runs" column starts at the same place on every row, stylegan-interpolate included.
    starts = {re.search(r"stylegan-\S+\s+(\d+)\s", r).start(1) for r in rows}
    assert len(starts) == 1, out


def test_a_sweep_with_nothing_to_run_never_starts_ray(tmp_path, monkeypatch):
    import priorlab.cluster.sweep as sweep_mod

    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a sweep with nothing to run")

    monkeypatch.setattr(sweep_mod, "connect", no_ray)
    cfg_path = write(tmp_path, RANDOM_ASHA)
    stored(cfg_path, tmp_path / "s", statuses={0: "pruned"})
    said: list[str] = []
    assert sweep_mod.run_sweep(str(cfg_path), store_dir=str(tmp_path / "s"), echo=said.append) == 0
    text = "\n".join(said)
    assert "0 to run: Ray not started" in text and "best settings" in text, text


def test_only_names_unknown_run_ids_in_one_line(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    assert main(["sweep", str(cfg_path), "--plan", "--only", "zzzz", "--store", str(tmp_path / "s")]) == 2
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "--only 'zzzz' matches no run of sweep 'asha'" in out


def test_only_plans_exactly_the_named_runs_even_when_done(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    trials = stored(cfg_path, tmp_path / "s")
    wanted = [trials[1]["run_id"][:8], trials[4]["run_id"]]
    assert main(["sweep", str(cfg_path), "--plan", "--only", ",".join(wanted), "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "2 to run as 2 Tune trials" in out, out
    listed = {t["run_id"] for t in trials if t["run_id"] in out}
    assert listed == {trials[1]["run_id"], trials[4]["run_id"]}


def test_check_offers_a_per_run_rerun_for_lost_artifacts(tmp_path, capsys):
    cfg_path = write(tmp_path, RANDOM_ASHA)
    trials = stored(cfg_path, tmp_path / "s")
    store = Store(tmp_path / "s")
    rid = trials[2]["run_id"]
    import numpy as np
    from synthetic import encode_png

    sha = store.log_artifact(rid, 10, "output", encode_png(np.zeros((4, 4, 3), np.uint8)))
    store.close()
    store.artifact_path(sha).unlink()
    assert main(["check", "--store", str(tmp_path / "s")]) == 1
    out = capsys.readouterr().out
    assert "--force" not in out
    assert f"priorlab sweep CONFIG --only {rid}" in out and "asha" in out, out
