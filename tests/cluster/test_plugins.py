"""User architectures and losses (`package.module:function`): validated before anything
starts, fitted like the built-in ones, and shipped to cluster nodes that lack the code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from priorlab.tasks.dip.params import DipParams

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "configs" / "examples"

USER_CODE = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny(depth, width, in_channels):
        # (N, in, H, W) -> (N, 3, H, W)
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid())

    def wrong_shape(depth, width, in_channels):
        return nn.Conv2d(in_channels, 4, 3, padding=1)

    def not_a_module(depth, width, in_channels):
        return "a string"

    def smooth_l1(output, target):
        return torch.nn.functional.smooth_l1_loss(output, target)

    def no_grad_loss(output, target):
        return torch.tensor(0.0)
    """
)


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "mynets.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(folder))
    yield "mynets"
    sys.modules.pop("mynets", None)


def error(**kw) -> str:
    with pytest.raises(ValidationError) as e:
        DipParams(size=32, depth=2, width=8, **kw)
    return str(e.value)


def test_bad_plugins_are_refused_naming_the_arch_and_the_problem(user_module):
    assert "cannot import 'nosuchpkg.nets'" in error(arch="nosuchpkg.nets:unet")
    assert "has no function 'missing'" in error(arch="mynets:missing")
    msg = error(arch="mynets:wrong_shape")
    assert "mynets:wrong_shape" in msg and "expected (2, 3, 16, 16)" in msg and "(2, 4, 16, 16)" in msg
    assert "not a torch.nn.Module" in error(arch="mynets:not_a_module")
    assert "has its own head" in error(arch="mynets:tiny", head="sigmoid")
    assert "must return a scalar tensor that depends on the output" in error(loss="mynets:no_grad_loss")
    assert "nor a plug-in" in error(arch="unet")  # a typo of a built-in still lists the built-ins


def test_a_plugin_arch_and_loss_are_fitted(user_module):
    from priorlab.tasks.dip.fit import run
    from priorlab.tasks.sink import MemorySink

    p = DipParams(arch="mynets:tiny", loss="mynets:smooth_l1", size=32, width=8, depth=1, sigma=0.2,
                  iterations=60, log_every=20, lr=0.02)
    sink = MemorySink()
    summary = run(p, sink)
    assert summary["status"] == "done"
    loss = [v for _, v in sink.series("loss")]
    psnr = [v for _, v in sink.series("psnr")]
    assert loss[-1] < loss[0] and psnr[-1] > psnr[0] + 1  # the user's net learns the image


def test_the_example_unet_builds_for_every_depth():
    sys.path.insert(0, str(EXAMPLES))
    try:
        for depth in (1, 2, 3):
            assert DipParams(arch="unet:unet", size=64, depth=depth, width=4).arch == "unet:unet"
    finally:
        sys.path.remove(str(EXAMPLES))


def test_plugin_modules_ship_user_code_but_not_installed_packages(user_module, tmp_path):
    from priorlab.cluster.runtime import plugin_modules

    trials = [{"params": {"arch": "mynets:tiny", "loss": "l2"}},
              {"params": {"arch": "skip", "loss": "torch.nn.functional:l1_loss"}},
              {"params": {"classifier": {"source": "python:mynets:tiny"}}}]
    assert plugin_modules(trials) == [str(tmp_path / "user_code" / "mynets.py")]


def test_a_module_only_the_driver_has_runs_on_both_nodes(ray_cluster, tmp_path):
    """The driver (a separate process, as `priorlab sweep --address` is) can import the user's
    module from a folder the cluster's workers never see; the sweep ships it via runtime_env."""
    from priorlab.analysis.store import Store

    driver_only = tmp_path / "driver_only"
    driver_only.mkdir()
    (driver_only / "mynets.py").write_text(USER_CODE)
    cfg = tmp_path / "plugin.yaml"
    cfg.write_text(textwrap.dedent(
        """
        name: plugin-nodes
        kind: dip
        fixed: {arch: "mynets:tiny", image: astronaut, size: 16, width: 4, depth: 1, iterations: 10,
                log_every: 5, snapshots: [10]}
        grid: {seed: [0, 1]}
        groups:
          - {name: on-head, fixed: {loss: l1}, resources: {cpu: 1, custom: {head: 1}}}
          - {name: on-worker, fixed: {loss: "mynets:smooth_l1"}, resources: {cpu: 1, custom: {worker: 1}}}
        """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(driver_only), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "priorlab.cluster.cli", "sweep", str(cfg), "--store", str(tmp_path / "store"),
                          "--address", ray_cluster.address], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = Store(tmp_path / "store").runs(sweep="plugin-nodes")
    assert len(runs) == 4 and (runs["status"] == "done").all(), runs[["status", "error"]]
    nodes = set(runs["node"])
    assert nodes == {ray_cluster.head_node.node_id, ray_cluster.extra_worker.node_id}
