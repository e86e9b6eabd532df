"""Every hostile config value is refused in one line before Ray starts (issue 16, item 10)."""

from __future__ import annotations

import pytest

from priorlab.cluster.cli import main

BASE = "name: p\nkind: dip\nfixed: {image: astronaut, size: 16, width: 4, depth: 1, iterations: 4, log_every: 2}\n"
RANDOM = "search: {type: random, num_samples: 2}\n"


def fixed(extra: str) -> str:
    return BASE.replace("log_every: 2}", f"log_every: 2, {extra}}}")


CASES = {
    "num_samples": (BASE + "search: {type: random, num_samples: 1000000000000}\ngrid: {lr: {loguniform: [1.0e-4, 0.1]}}\n",
                    "search.num_samples"),
    "randint": (BASE + RANDOM + "grid: {seed: {randint: [0, 1000000000000000000000000000000]}}\n", "randint"),
    "detectors_int": (fixed("detectors: 5"), "fixed.detectors = 5"),
    "detectors_bool": (fixed("detectors: true"), "fixed.detectors = True"),
    "seed": (fixed("seed: 99999999999999999999"), "fixed.seed"),
    "iterations": (BASE.replace("iterations: 4", "iterations: 99999999999999999999"), "fixed.iterations"),
    "log_every": (BASE.replace("log_every: 2", "log_every: 99999999999999999999"), "fixed.log_every"),
    "stylegan_seed": ("name: s\nkind: stylegan-sample\nfixed: {generator: 'random:16', n: 2, seed: 99999999999999999999}\n",
                      "fixed.seed"),
    "cpu": (BASE + "resources: {cpu: 5.0e-324}\n", "resources.cpu"),
    "custom": (BASE + "resources: {custom: {foo: -1}}\n", "custom.foo"),
    "width": (BASE.replace("width: 4", "width: 100000000"), "fixed.width"),
    "memory": (BASE.replace("width: 4", "width: 2048").replace("depth: 1", "depth: 4").replace("size: 16", "size: 64"),
               "GiB"),
    "asha_metric": (BASE + RANDOM + "grid: {lr: {loguniform: [1.0e-4, 0.1]}}\n"
                    "scheduler: {type: asha, metric: nope, grace_period: 1}\n", "scheduler.metric = 'nope'"),
    "optuna_metric": (BASE + "search: {type: optuna, num_samples: 2, metric: nope}\n"
                      "grid: {lr: {loguniform: [1.0e-4, 0.1]}}\n", "search.metric = 'nope'"),
    "plugin_prints": (fixed("arch: 'this:s'"), "has no function 's'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_in_one_line_before_ray_starts(case, tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    text, expected = CASES[case]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert main(["sweep", str(cfg), "--store", str(tmp_path / "s")]) == 2
    out, err = capfd.readouterr()
    said = [line for line in (out + err).splitlines() if line.strip()]
    assert len(said) == 1 and expected in said[0], said
    assert "Zen of Python" not in out + err
    assert not (tmp_path / "s").exists()  # nothing started, nothing written


def test_a_sweep_that_failed_before_running_anything_frees_its_name(tmp_path):
    from priorlab.analysis.store import Store
    from priorlab.cluster.config import load
    from priorlab.cluster.sweep import name_reuse_error

    old = BASE.replace("log_every: 2}", "log_every: 2, seed: 99999999999999999999}")
    fixed_text = BASE.replace("log_every: 2}", "log_every: 2, seed: 5}")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(fixed_text)
    cfg, text = load(cfg_path)
    store = Store(tmp_path / "s")
    store.upsert_sweep("p", old, "host")  # the failed first attempt recorded its config, ran nothing
    assert name_reuse_error(tmp_path / "s", cfg, text, extend=False) is None
    store.register_runs("p", [{"run_id": "r", "kind": "dip", "params": {}}])
    store.start_run("r")
    store.finish_run("r", "done", {})
    assert "different config" in name_reuse_error(tmp_path / "s", cfg, text, extend=False)
