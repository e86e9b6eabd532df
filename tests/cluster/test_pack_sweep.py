"""Packed sweeps (`pack: K`): grouping, the store's view of packed runs, resume, and --plan."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from priorlab.analysis.store import Store
from priorlab.cluster import config as sweep_config
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.cluster.items import PackItem, RunSpec, TrialItem
from priorlab.cluster.packing import pack_trials

PACKED = textwrap.dedent(
    """
    name: packed
    kind: dip
    fixed: {image: astronaut, size: 32, width: 8, depth: 1, iterations: 30, log_every: 10, snapshots: [30]}
    grid:
      arch: [seed-single]
      sigma: [0.1, 0.3]
      loss: [l2, l1]
    groups:
      - name: denoise
      - name: inpaint
        fixed: {task: inpaint, region: 8}
      - name: baselines
        kind: dip-baseline
        grid: {method: [tv]}
    resources: {cpu: 1}
    pack: 4
    """
)


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pack_key_is_validated(tmp_path):
    for bad in ("0", "two"):
        with pytest.raises(ConfigError, match=r"pack = .*"):
            sweep_config.load(write(tmp_path, PACKED.replace("pack: 4", f"pack: {bad}")))


def test_pack_refuses_a_searcher_or_a_scheduler():
    base = {"name": "x", "kind": "dip", "pack": 4, "grid": {"seed": [0, 1]}}
    asha, random = {"type": "asha", "grace_period": 10}, {"type": "random", "num_samples": 3}
    for extra in ({"scheduler": asha}, {"search": random}):
        with pytest.raises(ConfigError, match="pack: 4 works with the grid search"):
            sweep_config.parse({**base, **extra})


def test_runs_pack_by_network_shape_into_balanced_packs():
    cfg = sweep_config.parse({
        "name": "g", "kind": "dip", "pack": 4,
        "fixed": {"size": 32, "width": 8, "iterations": 20},
        "grid": {"arch": ["seed-double", "seed-single"], "seed": [0, 1, 2, 3, 4], "depth": [1]},
        "groups": [{"name": "dip"}, {"name": "b", "kind": "dip-baseline", "grid": {"method": ["tv"]}}],
    })
    trials = expand(cfg)
    items = pack_trials([RunSpec.from_dict(t) for t in trials], cfg.pack)
    packs = [i for i in items if isinstance(i, PackItem)]
    alone = [i for i in items if isinstance(i, TrialItem)]
    # 5 runs per architecture with K = 4: two packs each, 3 + 2 (not 4 + 1).
    assert sorted(len(p.members) for p in packs) == [2, 2, 3, 3]
    for p in packs:
        assert len({m.params["arch"] for m in p.members}) == 1
        assert p.resources == {"CPU": 1.0}
    # Every run is in exactly one item, under its own (unpacked) run id; baselines stay alone.
    ids = [r.run_id for i in items for r in i.runs]
    assert sorted(ids) == sorted(t["run_id"] for t in trials)
    assert {i.kind for i in alone} == {"dip-baseline"}
    runs = [RunSpec.from_dict(t) for t in trials]
    assert pack_trials(runs, 1) == [TrialItem(r) for r in runs]  # pack: 1 is no packing


def test_packed_sweep_stores_every_member_as_its_own_run_and_resumes_only_unfinished(ray_cluster, tmp_path):
    from priorlab.cluster.sweep import run_sweep

    cfg_path = write(tmp_path, PACKED)
    store_dir = tmp_path / "store"
    said: list[str] = []
    assert run_sweep(str(cfg_path), store_dir=str(store_dir), echo=said.append) == 0
    # 4 denoise + 4 inpaint runs -> 2 packs; the 2 baselines (one per sigma) stay alone.
    assert any("10 runs packed into 4 trials" in s for s in said)
    store = Store(store_dir)
    runs = store.runs(sweep="packed")
    expected = {t["run_id"] for t in expand(sweep_config.load(cfg_path)[0])}
    assert set(runs["run_id"]) == expected and set(runs["status"]) == {"done"}
    dip = runs[runs["kind"] == "dip"]
    assert set(dip["pack_size"]) == {4} and dip["pack_id"].nunique() == 2
    # Each member has its own metric rows and images, as an unpacked run would.
    metrics = store.metrics(run_ids=list(dip["run_id"]), names=["psnr"])
    assert metrics.groupby("run_id")["step"].apply(list).map(sorted).map(tuple).unique().tolist() == [(10, 20, 30)]
    arts = store.artifacts(run_ids=list(dip["run_id"]), names=["output"])
    assert len(arts) == 8

    # A crash left two members unfinished: the rerun packs and refits only those two.
    lost = list(dip["run_id"][:2])
    for rid in lost:
        store.start_run(rid, force=True)  # as a rerun that then crashed would have left them
    store.mark_unfinished(lost)
    before = runs.set_index("run_id")["finished_at"]
    said.clear()
    assert run_sweep(str(cfg_path), store_dir=str(store_dir), echo=said.append) == 0
    assert any("2 to run" in s for s in said) and any("2 runs packed into 1 trials" in s for s in said)
    after = store.runs(sweep="packed").set_index("run_id")
    assert set(after["status"]) == {"done"}
    assert set(after.loc[lost, "pack_size"]) == {2}
    untouched = [r for r in before.index if r not in lost]
    assert (after.loc[untouched, "finished_at"] == before[untouched]).all()


def test_plan_prints_packs_resources_and_concurrency_without_running(tmp_path, capsys):
    from priorlab.cluster.cli import main

    cfg_path = write(tmp_path, PACKED.replace("resources: {cpu: 1}", "resources: {cpu: 1, gpu: 0.25}"))
    store_dir = tmp_path / "store"
    assert main(["sweep", str(cfg_path), "--plan", "--store", str(store_dir), "--num-cpus", "4"]) == 0
    out = capsys.readouterr().out
    assert "10 runs" in out and "4 Tune trials (2 packs of up to 4 runs)" in out
    assert out.count("pack-") == 2 and "CPU 1, GPU 0.25" in out
    assert "this machine" in out and "4 CPUs" in out
    assert not store_dir.exists()  # nothing ran, no store was made


def test_plan_reports_a_config_error_with_exit_2(tmp_path, capsys):
    from priorlab.cluster.cli import main

    cfg_path = write(tmp_path, PACKED.replace("pack: 4", "pack: -1"))
    assert main(["sweep", str(cfg_path), "--plan"]) == 2
    assert "pack" in capsys.readouterr().out


def test_plan_with_an_address_counts_the_joined_clusters_nodes(ray_cluster, tmp_path, capsys):
    from priorlab.cluster.cli import main

    cfg_path = write(tmp_path, PACKED)
    argv = ["sweep", str(cfg_path), "--plan", "--store", str(tmp_path / "s"), "--address", ray_cluster.address]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # The session cluster: two nodes of 1 CPU each, so two 1-CPU trials at once.
    assert f"the Ray cluster at {ray_cluster.address} (2 nodes" in out
    assert "trials asking CPU 1: 2 of 4 at once" in out
