"""Images at the edges, and `priorlab dip` / `priorlab baseline` as a user runs them."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from priorlab.cluster.cli import main
from priorlab.tasks import inputs
from priorlab.tasks.images import load_image, png_bytes


def test_grayscale_and_rgba_files_load_as_rgb_crops(tmp_path):
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) % 255).astype(np.uint8), "L").save(tmp_path / "g.png")
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0  # fully transparent red shows as white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    g = load_image(str(tmp_path / "g.png"), 32)
    a = load_image(str(tmp_path / "a.png"), 16)
    assert g.shape == (1, 3, 32, 32) and torch.equal(g[:, 0], g[:, 1])
    assert a.shape == (1, 3, 16, 16) and torch.allclose(a, torch.ones_like(a))


def test_png_round_trip_and_image_bytes_handed_to_a_node_without_the_file(tmp_path):
    x = load_image("chelsea", 32)
    back = torch.from_numpy(np.array(Image.open(io.BytesIO(png_bytes(x))))).permute(2, 0, 1) / 255.0
    assert (back - x[0]).abs().max() <= 1 / 255 + 1e-6
    # A trial on another node reads its copy of the driver's file: the path need not exist there.
    from priorlab.tasks.dip import DipParams

    name = str(tmp_path / "only-on-the-driver.png")
    (tmp_path / "copy.png").write_bytes(png_bytes(x))
    inputs.provide(name, tmp_path / "copy.png")
    p = DipParams(image=name, size=32, depth=1, width=4, iterations=2)
    assert torch.allclose(load_image(p.image, 32), x, atol=1 / 255)


def test_priorlab_dip_writes_summary_metrics_and_snapshots(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["dip", "--arch", "skip", "--task", "denoise", "--image", "astronaut", "--size", "32", "--depth", "2",
                 "--width", "8", "--sigma", "0.1", "--loss", "l2", "--iterations", "30", "--log-every", "10",
                 "--snapshots", "10,30", "--out", str(out), "--store", str(tmp_path / "store")])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("best_psnr", "best_step", "final_psnr", "input_psnr", "ssim_at_best", "wall_s", "iters_per_s"):
        assert key in summary
    assert summary["params"]["arch"] == "skip" and summary["params"]["iterations"] == 30
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [10, 20, 30] and "psnr" in rows[0]
    assert {p.name for p in out.glob("*.png")} >= {"clean_000000.png", "corrupted_000000.png", "output_000010.png", "output_000030.png"}
    from priorlab.analysis.store import Store

    runs = Store(tmp_path / "store").runs()
    assert len(runs) == 1 and runs["status"].iloc[0] == "done" and runs["run_id"].iloc[0] == summary["run_id"]


@pytest.mark.parametrize(
    "argv, field",
    [(["--arch", "unet"], "--arch"), (["--depth", "9", "--size", "64"], "--depth"), (["--sigma", "-1"], "--sigma"),
     (["--image", "/no/such.png"], "--image"), (["--loss", "l3"], "--loss"),
     (["--task", "inpaint", "--region", "64", "--size", "64"], "--region")],
)
def test_bad_flags_exit_2_naming_the_flag(argv, field, capsys, tmp_path):
    assert main(["dip", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert field in err and len(err.strip().splitlines()) == 1, err


def test_priorlab_baseline_runs(tmp_path):
    assert main(["baseline", "--method", "tv", "--size", "32", "--sigma", "0.2", "--out", str(tmp_path / "b")]) == 0
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert s["best_psnr"] > s["input_psnr"]


def test_stylegan_convert_then_generate_gives_the_same_images(tmp_path):
    import numpy as np

    assert main(["stylegan", "convert", "random:16", str(tmp_path / "g.pt")]) == 0
    for src, out in (("random:16", "a"), (str(tmp_path / "g.pt"), "b")):
        assert main(["stylegan", "generate", "--checkpoint", src, "--seeds", "0,5", "--out", str(tmp_path / out), "--raw"]) == 0
    a, b = np.load(tmp_path / "a" / "raw.npy"), np.load(tmp_path / "b" / "raw.npy")
    assert a.shape == (2, 3, 16, 16) and a.dtype == np.float32 and np.array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == ["seed0000.png", "seed0005.png"]


def test_stylegan_refuses_a_pickle_that_would_run_code(tmp_path, capsys):
    import os
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": Evil()}))
    assert main(["stylegan", "generate", "--checkpoint", str(tmp_path / "evil.pkl"), "--seeds", "0",
                 "--out", str(tmp_path / "o")]) == 2
    assert "system" in capsys.readouterr().err and not marker.exists()
