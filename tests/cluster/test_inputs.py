"""Input files (issue 15): every file a run names is checked once before anything starts,
relative names resolve against the config file's folder, `--plan` lists them, and a file that
changed under a done run is noticed on resume."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from priorlab.cluster.cli import main
from priorlab.cluster.sweep import EXIT_CONFIG, EXIT_OK, run_sweep


def small_generator(path: Path, seed: int = 0) -> Path:
    from priorlab.tasks.stylegan.checkpoints import random_generator, save_generator

    save_generator(random_generator(f"random:8?seed={seed}&channel_max=16&z_dim=16&w_dim=16&mapping_layers=2"), path)
    return path


def torchscript_classifier(path: Path) -> Path:
    class Redness(torch.nn.Module):
        def forward(self, x):  # (N, 3, H, W) -> (N,) logits
            return (x[:, 0] - x[:, 1]).mean(dim=(1, 2)) * 20

    torch.jit.script(Redness()).save(str(path))
    return path


def sg_config(folder: Path, name: str, fixed: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{name}.yaml"
    cfg.write_text(textwrap.dedent(f"""
        name: {name}
        kind: stylegan-sample
        fixed: {{n: 2, batch_size: 4, calibration_samples: 8, {fixed}}}
        resources: {{cpu: 1}}
        """))
    return cfg


def test_relative_files_beside_the_config_are_found_and_the_plan_lists_them(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    small_generator(project / "g.pt")
    torchscript_classifier(project / "red.pt")
    cfg = sg_config(project, "rel", 'generator: g.pt, classifier: {source: "torchscript:red.pt"}')
    monkeypatch.chdir(tmp_path)  # the files are beside the config, not in the current folder
    assert main(["sweep", str(cfg.relative_to(tmp_path)), "--plan", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "input files: 2" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  generator") or "classifier.source" in line}
    assert "g.pt" in lines["generator"] and "KB" in lines["generator"] and "sha256" in lines["generator"]
    assert "red.pt" in lines["classifier.source"]


@pytest.mark.parametrize("field, fixed, says", [
    ("generator", "generator: missing.pkl", "no such file"),
    ("generator", "generator: hostile.pkl", "cannot be loaded"),
    ("generator", "generator: text.pt", "cannot be loaded"),
    ("classifier.source", 'classifier: {source: "torchscript:nope.pt"}', "no such file"),
    ("classifier.source", 'classifier: {source: "torchscript:text.pt"}', "cannot be loaded"),
    ("classifier.weights", 'classifier: {source: "torchvision:resnet18", weights: text.pt, labels: [a, positive]}',
     "cannot be loaded"),
])
def test_a_missing_or_hostile_input_file_is_one_line_exit_2_before_anything_starts(tmp_path, capsys, field, fixed,
                                                                                      says):
    project = tmp_path / "p"
    project.mkdir()

    class Boom:
        def __reduce__(self):
            return (print, ("the pickle ran code",))

    (project / "hostile.pkl").write_bytes(pickle.dumps({"G_ema": Boom()}))
    (project / "text.pt").write_text("not a checkpoint")
    cfg = sg_config(project, "bad", fixed)
    for argv in (["--plan"], []):  # the plan refuses it as the sweep does, and no Ray starts
        code = main(["sweep", str(cfg), "--store", str(tmp_path / "s"), *argv])
        out = capsys.readouterr()
        assert code == EXIT_CONFIG, out
        errors = [line for line in out.out.splitlines() if line.startswith("config error")]
        assert len(errors) == 1 and field in errors[0] and says in errors[0], out.out
        assert "the pickle ran code" not in out.out + out.err
        assert not (tmp_path / "s").exists()


def test_traverse_normals_and_identity_files_are_checked(tmp_path, capsys):
    project = tmp_path / "p"
    project.mkdir()
    np.savez(project / "n.npz", other=np.zeros(3))
    cfg = project / "t.yaml"
    cfg.write_text("name: t\nkind: stylegan-traverse\nfixed: {normals_file: n.npz}\n")
    assert main(["sweep", str(cfg), "--plan"]) == EXIT_CONFIG
    assert "normals_file 'n.npz'" in capsys.readouterr().out
    cfg.write_text("name: t\nkind: stylegan-traverse\nfixed: {identity_model: id.pt}\n")
    assert main(["sweep", str(cfg), "--plan"]) == EXIT_CONFIG
    assert "identity_model 'id.pt': no such file" in capsys.readouterr().out


def test_a_file_changed_between_a_run_and_its_resume_is_noticed(ray_cluster, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    small_generator(project / "g.pt")
    cfg = sg_config(project, "changing", "generator: g.pt")
    store = tmp_path / "store"
    assert run_sweep(str(cfg), store_dir=str(store), echo=lambda s: None) == EXIT_OK
    assert run_sweep(str(cfg), store_dir=str(store), echo=lambda s: None) == EXIT_OK  # unchanged: resumes
    small_generator(project / "g.pt", seed=1)  # other weights under the same name
    said: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(store), echo=said.append) == EXIT_CONFIG
    assert any("generator 'g.pt' changed since run" in s and "--force" in s for s in said), said
    assert main(["sweep", str(cfg), "--store", str(store), "--plan"]) == EXIT_CONFIG  # the plan says so too
    assert run_sweep(str(cfg), store_dir=str(store), echo=lambda s: None, force=True) == EXIT_OK
