"""The typed work items Tune carries (cluster/items.py), and one trial path for packed and
single runs (cluster/trial.py::claim_run_finish)."""

from __future__ import annotations

import json
import textwrap

from priorlab.cluster.items import DrawItem, PackItem, RunSpec, ShardItem, TrialItem, from_tune, to_tune


def test_items_round_trip_through_the_dicts_tune_carries():
    run = RunSpec("r1", "dip", {"seed": 0, "size": [32, 32]}, {"CPU": 1.0})
    forced = RunSpec("r2", "dip", {"seed": 1}, {"CPU": 1.0, "GPU": 0.5}, force=True)
    items = [TrialItem(run), TrialItem(forced), PackItem("pack-1", (run, forced), {"CPU": 1.0}),
             ShardItem(run, 2, 4), DrawItem("dip", "s", {"size": 32}, {"CPU": 2.0})]
    for item in items:
        carried = to_tune(item)
        # Plain JSON data: Tune never swaps it for a placeholder and its records can hold it.
        assert json.loads(json.dumps(carried)) == carried
        assert from_tune(carried) == item
        assert type(from_tune(carried)) is type(item)
    # The fields every item had as a dict stay as they were: Tune's trial names and requests.
    assert to_tune(TrialItem(run)) == {"item": "trial", "run_id": "r1", "kind": "dip",
                                       "params": run.params, "resources": {"CPU": 1.0}}
    assert to_tune(TrialItem(forced))["force"] is True
    assert [i.name for i in items] == ["r1", "r2", "pack-1", "r1-s2", None]
    assert to_tune(ShardItem(run, 2, 4))["name"] == "r1-s2"
    assert RunSpec.from_dict(run.to_dict()) == run and RunSpec.from_dict(forced.to_dict()) == forced


SWEEP = textwrap.dedent(
    """
    name: same
    kind: dip
    fixed: {image: astronaut, size: 32, width: 8, depth: 1, iterations: 20, log_every: 10, snapshots: [20]}
    grid: {arch: [seed-single], seed: [0, 1]}
    resources: {cpu: 1}
    """
)


def test_a_packed_and_a_single_trial_store_the_same_run(ray_cluster, tmp_path):
    """Both go through one claim-run-finish path: the same rows, the same summary keys (a pack
    adds its pack_id and pack_size) and, up to the batched arithmetic, the same numbers."""
    from priorlab.analysis.store import Store
    from priorlab.cluster.sweep import run_sweep

    stored = {}
    for name, extra in (("single", ""), ("packed", "pack: 2\n")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(SWEEP + extra)
        assert run_sweep(str(path), store_dir=str(tmp_path / name), echo=lambda _: None) == 0
        store = Store(tmp_path / name)
        runs = store.runs(sweep="same").set_index("run_id").sort_index()
        metrics = store.metrics(run_ids=list(runs.index)).sort_values(["run_id", "step", "name"])
        arts = store.artifacts(run_ids=list(runs.index))
        stored[name] = runs, metrics, arts
    (single, m_single, a_single), (packed, m_packed, a_packed) = stored["single"], stored["packed"]
    assert list(single.index) == list(packed.index)  # the same run ids
    assert set(single["status"]) == set(packed["status"]) == {"done"}
    assert set(packed["pack_size"]) == {2}
    summary = [c for c in single.columns if c not in ("pack_id", "pack_size")]
    for col in ("n_params", "iterations_done", "best_step", "input_psnr"):
        assert (single[col] == packed[col]).all(), col
    assert (abs(single["best_psnr"] - packed["best_psnr"]) < 0.05).all()
    assert [c for c in packed.columns if c in summary] == summary
    assert (m_single[["run_id", "step", "name"]].values == m_packed[["run_id", "step", "name"]].values).all()
    assert sorted(zip(a_single["run_id"], a_single["step"], a_single["name"])) == \
        sorted(zip(a_packed["run_id"], a_packed["step"], a_packed["name"]))
