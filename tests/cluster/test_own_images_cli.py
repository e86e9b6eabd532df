"""Your own images from the command line and in sweep configs (issue 14): one command restores
a photo with no clean copy, the end-of-run line says where and why it stopped, bad inputs are
one line with exit 2 before anything runs, a folder of pairs is one axis value."""

from __future__ import annotations

import pytest
from PIL import Image

from priorlab.cluster.cli import main
from priorlab.cluster.config import parse
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand
from priorlab.tasks.dip.degrade import STREAM_CORRUPT, add_noise, seeded
from priorlab.tasks.images import load_image, png_bytes

FAST = ["--arch", "skip", "--depth", "2", "--width", "8", "--input-depth", "8", "--iterations", "60",
        "--log-every", "10", "--device", "cpu"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_own")
    clean = load_image("camera", 64)[..., :40, :]  # (1, 3, 40, 64): not square
    for sub in ("clean", "noisy"):
        (d / "set" / sub).mkdir(parents=True)
    (d / "set" / "clean" / "cam.png").write_bytes(png_bytes(clean))
    (d / "set" / "noisy" / "cam.png").write_bytes(png_bytes(add_noise(clean, 0.2, seeded(0, STREAM_CORRUPT))))
    return d


def test_one_command_restores_a_photo_with_no_clean_copy(pair, tmp_path, capsys):
    noisy = str(pair / "set" / "noisy" / "cam.png")
    assert main(["dip", "--corrupted", noisy, *FAST, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '"reference": "none"' in out and "sigma_est" in out
    line = next(l for l in out.splitlines() if l.startswith(("stopped at step", "ran all")))
    assert "rw" in line and "restored = the output at step" in line, line
    with Image.open(tmp_path / "restored.png") as im:
        assert im.size == (64, 40), "the restored photo has the photo's own size"


def test_a_run_with_reference_says_where_each_detector_would_stop(pair, tmp_path, capsys):
    s = pair / "set"
    args = ["--corrupted", str(s / "noisy" / "cam.png"), "--image", str(s / "clean" / "cam.png"), "--sigma", "auto"]
    assert main(["dip", *args, *FAST, "--out", str(tmp_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("ran all"))
    assert "detectors would stop at: wmv" in line and "(gap " in line and "oracle best" in line, line


def test_stop_none_without_reference_warns_in_one_line(pair, tmp_path, capsys):
    noisy = str(pair / "set" / "noisy" / "cam.png")
    assert main(["dip", "--corrupted", noisy, "--stop", "none", *FAST, "--iterations", "10",
                 "--out", str(tmp_path)]) == 0
    err = [l for l in capsys.readouterr().err.splitlines() if "warning" in l]
    assert len(err) == 1 and "fitted the noise" in err[0]


@pytest.mark.parametrize("extra, words", [
    (["--mask", "{noisy}"], "--mask"),
    (["--task", "inpaint", "--mask", "{other}"], "--mask"),
    (["--sigma", "0"], "--detectors"),
])
def test_bad_own_inputs_exit_2_before_running(pair, tmp_path, capsys, extra, words):
    Image.new("RGB", (10, 10)).save(pair / "other.png")
    files = {"noisy": str(pair / "set" / "noisy" / "cam.png"), "other": str(pair / "other.png")}
    argv = ["dip", "--corrupted", files["noisy"], *[a.format(**files) for a in extra], *FAST, "--out", str(tmp_path)]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()


def test_a_folder_of_pairs_is_one_axis_value_with_its_references(pair, tmp_path):
    cfg = parse({"name": "own", "kind": "dip", "fixed": {"corrupted": str(pair / "set"), "arch": "skip",
                                                          "depth": 2, "width": 8, "iterations": 10}})
    (trial,) = expand(cfg)
    assert trial["params"]["corrupted"].endswith("noisy/cam.png")
    assert trial["params"]["image"].endswith("clean/cam.png") and trial["params"]["size"] == "native"
    (pair / "set" / "noisy" / "lone.png").write_bytes((pair / "set" / "noisy" / "cam.png").read_bytes())
    try:
        with pytest.raises(ConfigError, match="lone.png' has no partner"):
            expand(cfg)
    finally:
        (pair / "set" / "noisy" / "lone.png").unlink()
