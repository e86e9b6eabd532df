"""The StyleGAN page, through streamlit.testing (no browser), on a store written by the real sweep.

`sg_store` runs the whole StyleGAN chain once per session (a random:16 generator and the builtin
redness classifier, a few seconds of work) over the session's Ray cluster. Expected numbers are
computed here from `Store.runs()` / `Store.metrics()` with pandas, not by the page's code.
Variants of the store (a second run, a failed run, deleted artifact files) are written with
the store's own write API into a copy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis.store import Store

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import apptest_helpers  # noqa: E402
from apptest_helpers import APP, ROOT, assert_ok, sweep_into_store  # noqa: E402


def open_page(monkeypatch, store: Path, page: str = "stylegan", **query) -> AppTest:
    return apptest_helpers.open_page(monkeypatch, store, page, **query)

SPACES = ("z_lerp", "z_slerp", "w_lerp")
STEPS = 7
PAIRS = 3
SG_CLAIMS = ["stylegan-z-flips-sooner", "stylegan-w-keeps-features", "stylegan-identity-not-preserved",
             "stylegan-traversals-change-attribute"]

CONFIG = textwrap.dedent(
    f"""
    name: sg-dash
    kind: stylegan-sample
    fixed:
      generator: "random:16"
      seed: 0
      batch_size: 16
      truncation_psi: 0.7
      classifier: {{source: "builtin:redness", positive: redder, negative: less red}}
      calibration_samples: 32
    groups:
      - {{kind: stylegan-sample, fixed: {{n: 4}}}}
      - {{kind: stylegan-interpolate, fixed: {{pairs: {PAIRS}, steps: {STEPS}, pool: 32}}}}
      - {{kind: stylegan-direction, fixed: {{n_samples: 128, keep_fraction: 0.25}}}}
      - kind: stylegan-traverse
        fixed: {{n_latents: 3, steps: 5, alpha_max: 2.0, direction: {{n_samples: 128, keep_fraction: 0.25}}}}
    resources: {{cpu: 1}}
    """
)


@pytest.fixture(scope="session")
def sg_store(ray_cluster, tmp_path_factory) -> Path:
    return sweep_into_store(CONFIG, tmp_path_factory.mktemp("sg-store"))


@pytest.fixture()
def sg_copy(sg_store, tmp_path) -> Path:
    shutil.copytree(sg_store, tmp_path / "store")
    return tmp_path / "store"






def texts(at: AppTest, *kinds: str) -> str:
    return "\n".join(str(e.value) for kind in kinds or ("markdown", "caption", "info", "warning")
                     for e in getattr(at, kind))


def captions(at: AppTest) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def by_kind(store: Path) -> pd.DataFrame:
    return Store(store).runs().set_index("kind")


def flips_from_labels(store: Path, run_id: str) -> dict[tuple[str, int], int | None]:
    """(space, pair) -> the first frame whose stored label differs from frame 0's."""
    m = Store(store).metrics([run_id])
    out = {}
    for space in SPACES:
        for pair in range(PAIRS):
            lab = m[m["name"] == f"label/{space}/pair{pair}"].sort_values("step")["value"].round().astype(int).tolist()
            assert len(lab) == STEPS
            out[space, pair] = next((k for k, v in enumerate(lab) if v != lab[0]), None)
    return out


def clone_run(store: Path, run_id: str, new_id: str, sweep: str, param_changes: dict,
              label_shift: int = 0) -> None:
    """A copy of a finished run under another id and sweep, with some parameters changed and
    (for interpolations) every label sequence shifted `label_shift` frames later."""
    with sqlite3.connect(store / "priorlab.db") as c:
        kind, params, summary = c.execute("SELECT kind, params, summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    s = Store(store)
    m, arts = s.metrics([run_id]), s.artifacts([run_id])
    s.register_runs(sweep, [{"run_id": new_id, "kind": kind, "params": {**json.loads(params), **param_changes}}])
    s.start_run(new_id)
    rows = []
    for name, g in m.groupby("name"):
        g = g.sort_values("step")
        values = g["value"].to_numpy()
        if label_shift and name.startswith("label/"):
            values = np.concatenate([np.repeat(values[:1], label_shift), values[:-label_shift]])
        rows += [(new_id, int(k), name, float(v)) for k, v in zip(g["step"], values)]
    s.log_metrics_rows(rows)
    for _, a in arts.iterrows():
        s.log_artifact(new_id, int(a["step"]), a["name"], s.artifact_bytes(a["sha256"]))
    s.finish_run(new_id, "done", summary=json.loads(summary))


# ------------------------------------------------------------------ empty stores


def test_empty_store_names_the_stylegan_smoke_config(monkeypatch, empty_store):
    at = open_page(monkeypatch, empty_store)
    assert_ok(at)
    assert at.title[0].value == "StyleGAN"
    assert "priorlab sweep configs/stylegan_smoke.yaml" in texts(at, "info")


def test_missing_store_and_dip_only_store(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    at = open_page(monkeypatch, missing)
    assert_ok(at)
    assert "priorlab sweep configs/stylegan_smoke.yaml" in texts(at, "info")
    assert not missing.exists(), "the dashboard must never create a store"

    dip = Store(tmp_path / "dip")
    dip.register_runs("d", [{"run_id": "r1", "kind": "dip", "params": {"arch": "skip"}}])
    dip.start_run("r1")
    dip.finish_run("r1", "done", summary={"best_psnr": 20.0})
    at = open_page(monkeypatch, tmp_path / "dip")
    assert_ok(at)
    shown = texts(at, "info")
    assert "No StyleGAN runs yet" in shown and "stylegan_smoke.yaml" in shown


# ------------------------------------------------------------------ the real sweep


def test_page_shows_z_and_w_flips_svm_and_traversals(monkeypatch, sg_store):
    from priorlab.analysis import findings

    runs = by_kind(sg_store)
    assert (runs["status"] == "done").all()
    at = open_page(monkeypatch, sg_store)
    assert_ok(at)
    caps = captions(at)

    # z vs w samples: one figure with both rows.
    assert any(c.startswith("z (top row)") and "w (bottom row)" in c for c in caps), caps

    # Interpolation: the mean flip frame per space, from the stored per-frame labels.
    interp = runs.loc["stylegan-interpolate"]
    flips = flips_from_labels(sg_store, interp["run_id"])
    for (space, pair), f in flips.items():  # the job's own summary agrees with its labels
        stored = interp[f"{space}_flip_step_pair{pair}"]
        assert (None if pd.isna(stored) else int(stored)) == f
    shown = metrics(at)
    for space in SPACES:
        got = [f for (s, _), f in flips.items() if s == space and f is not None]
        want = f"{np.mean(got):.2f}" if got else "—"
        assert shown[f"{space}: mean flip frame"] == want
    table = next(df.value for df in at.dataframe if list(df.value.columns) == list(SPACES))
    for (space, pair), f in flips.items():
        cell = table.loc[f"pair {pair}", space]
        assert (pd.isna(cell) and f is None) or cell == f
    where = ", ".join(f"{s} at frame {flips[s, 0]}" if flips[s, 0] is not None else f"{s} never" for s in SPACES)
    assert f"Pair 0: the label flips {where}" in " ".join(caps)
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) >= 3, "flip, SVM and curve charts"

    # SVM accuracy per space, as stored.
    direction = runs.loc["stylegan-direction"]
    acc = next(df.value for df in at.dataframe if "validation accuracy" in df.value.columns).set_index("space")
    for s in ("z", "w"):
        assert acc.loc[s, "validation accuracy"] == pytest.approx(direction[f"{s}_val_accuracy"])
        assert acc.loc[s, "train accuracy"] == pytest.approx(direction[f"{s}_train_accuracy"])
    assert any(c.startswith("What the SVM separates") for c in caps)

    # Traversals: a figure per space and the per-space numbers in the answers.
    trav = runs.loc["stylegan-traverse"]
    assert sum(c.startswith(("z: each row", "w: each row")) for c in caps) == 2
    answers = texts(at, "markdown")
    assert f"**{trav['z_ssim_at_max']:.2f}** in z and **{trav['w_ssim_at_max']:.2f}** in w" in answers
    assert f"**{trav['z_success_rate']:.0%}** in z and **{trav['w_success_rate']:.0%}** in w" in answers
    z_frac = np.mean([f / (STEPS - 1) for (s, _), f in flips.items() if s == "z_lerp" and f is not None])
    assert f"**{z_frac:.0%}** of the way" in answers
    # One traverse run: the claims table says "not enough data", and so must the sentence (issue
    # 18.11: the page stated in bold what the claim beside it could not decide).
    keeps = "w" if trav["w_ssim_loss_per_dprob"] < trav["z_ssim_loss_per_dprob"] else "z"
    assert "keeps more of the original features**" not in answers
    assert f"{keeps} lost" in answers and "too few runs to call it: the claim `stylegan-w-keeps-features`" in answers
    verdicts = findings.evaluate(Store(sg_store).runs()).set_index("claim")["verdict"]
    assert verdicts["stylegan-w-keeps-features"] == findings.NOT_ENOUGH
    for claim in SG_CLAIMS:
        assert f"`{claim}`" in answers


def test_pickers_and_pair_come_from_the_url(monkeypatch, sg_copy):
    interp = by_kind(sg_copy).loc["stylegan-interpolate"]
    clone_run(sg_copy, interp["run_id"], "interpclone00001", "second", {"pool": 33}, label_shift=1)
    flips = flips_from_labels(sg_copy, "interpclone00001")
    original = flips_from_labels(sg_copy, interp["run_id"])
    assert all(flips[k] == (None if original[k] is None or original[k] + 1 >= STEPS else original[k] + 1)
               for k in flips)

    at = open_page(monkeypatch, sg_copy, sg_interp="interpclone00001", sg_pair="2")
    assert_ok(at)
    assert at.selectbox(key="sg_interp_pick").value == "interpclone00001"
    assert at.selectbox(key="sg_sweep").options == ["all", "second", "sg-dash"]
    where = ", ".join(f"{s} at frame {flips[s, 2]}" if flips[s, 2] is not None else f"{s} never" for s in SPACES)
    assert f"Pair 2: the label flips {where}" in " ".join(captions(at))
    got = [f for (s, _), f in flips.items() if s == "w_lerp" and f is not None]
    assert metrics(at)["w_lerp: mean flip frame"] == (f"{np.mean(got):.2f}" if got else "—")

    # Picking the other run puts its id (not its label) in the URL; a run-id prefix works as a link.
    at.selectbox(key="sg_interp_pick").select(interp["run_id"])
    at.switch_page("views/stylegan.py").run()
    assert_ok(at)
    assert at.query_params["sg_interp"] == interp["run_id"]
    wanted = [f for (s, _), f in original.items() if s == "w_lerp" and f is not None]
    assert metrics(at)["w_lerp: mean flip frame"] == (f"{np.mean(wanted):.2f}" if wanted else "—")
    at = open_page(monkeypatch, sg_copy, sg_interp=interp["run_id"][:8])
    assert_ok(at)
    assert at.selectbox(key="sg_interp_pick").value == interp["run_id"]

    # One sweep only: the clone is out of scope, so the original run is the only choice.
    at = open_page(monkeypatch, sg_copy, sg_sweep="sg-dash", sg_interp="interpclone00001")
    assert_ok(at)
    assert not [s for s in at.selectbox if s.key == "sg_interp_pick"]
    assert metrics(at)["w_lerp: mean flip frame"] == (f"{np.mean(wanted):.2f}" if wanted else "—")

    # A stale link falls back to the latest run.
    at = open_page(monkeypatch, sg_copy, sg_interp="nosuchrun", sg_pair="99")
    assert_ok(at)
    assert at.selectbox(key="sg_interp_pick").value == "interpclone00001"
    assert at.get("button_group")[0].value == 0


def test_failed_runs_and_missing_files(monkeypatch, sg_copy):
    store = Store(sg_copy)
    runs = by_kind(sg_copy)
    store.finish_run(runs.loc["stylegan-traverse", "run_id"], "error", error="ValueError: traverse went wrong")
    for sha in store.artifacts()["sha256"]:
        store.artifact_path(sha).unlink(missing_ok=True)
    at = open_page(monkeypatch, sg_copy)
    assert_ok(at)
    assert "1 StyleGAN run did not finish (stylegan-traverse: 1)" in texts(at, "warning")
    assert "ValueError: traverse went wrong" in "\n".join(str(c.value) for c in at.code)
    assert "No finished stylegan-traverse run yet (1 failed, see above)" in texts(at, "info")
    assert "No finished traversal run in" in texts(at, "markdown")
    caps = captions(at)
    assert any(c.startswith("z (top row)") for c in caps) and any(c.startswith("Pair 0:") for c in caps), \
        "placeholders where the files were"
    assert metrics(at)["z_lerp: mean flip frame"], "the numbers do not need the images"


def test_findings_page_checks_the_stylegan_claims(monkeypatch, sg_store):
    from priorlab.analysis import findings

    table = findings.evaluate(Store(sg_store).runs()).set_index("claim")
    trav = by_kind(sg_store).loc["stylegan-traverse"]
    assert f"z {trav['z_ssim_at_max']:.2f}" in table.loc["stylegan-identity-not-preserved", "explanation"]
    assert table.loc["stylegan-z-flips-sooner", "n_pairs"] == PAIRS
    dip = [c.id for c in findings.CLAIMS if c.kind == "dip"]
    assert (table.loc[dip, "n_pairs"] == 0).all(), "DIP claims never see StyleGAN runs"

    at = open_page(monkeypatch, sg_store, page="findings")
    assert_ok(at)
    shown = texts(at, "markdown")
    for claim in SG_CLAIMS:
        assert f"**{claim}**" in shown
    assert len([m for m in at.markdown if "-badge[" in str(m.value)]) == len(findings.CLAIMS)


def test_the_page_imports_no_torch_ray_tasks_or_cluster(sg_store):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["PRIORLAB_STORE"] = {str(sg_store)!r}
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({APP!r}, default_timeout=60)
        at.switch_page("views/stylegan.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.get("image")) >= 4
        bad = sorted(m for m in sys.modules if (m.split(".")[0] in ("torch", "ray", "torchvision") or m.split(".")[:2] in (["priorlab", "tasks"], ["priorlab", "cluster"])))
        print("BAD", bad)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD []" in out.stdout, out.stdout


# ------------------------------------------------------------------ strips (PIL only)


def test_strips_cut_what_make_grid_laid_out_and_draw_labels():
    from PIL import Image

    from priorlab.dashboard import strips

    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    grid = Image.new("RGB", (3 * (8 + 2) + 2, 8 + 4), (255, 255, 255))  # make_grid: padding 2, white
    for k, c in enumerate(colors):
        grid.paste(Image.new("RGB", (8, 8), c), (2 + k * 10, 2))
    cut = strips.cut(grid, 3)
    assert len(cut) == 1 and [f.size for f in cut[0]] == [(8, 8)] * 3
    assert [f.getpixel((0, 0)) for f in cut[0]] == colors and [f.getpixel((7, 7)) for f in cut[0]] == colors
    assert strips.cut(grid, 4) is None and strips.cut(None, 3) is None
    two_rows = Image.new("RGB", (2 * 10 + 2, 2 * 10 + 2), (255, 255, 255))
    two_rows.paste(Image.new("RGB", (8, 8), (9, 9, 9)), (12, 12))
    assert strips.cut(two_rows, 2, 2)[1][1].getpixel((4, 4)) == (9, 9, 9)

    fig = strips.annotated_grid([cut[0], [None, cut[0][1], None]], captions=[["0: a\np=0.1", "1", "2"], ["x"] * 3],
                                borders=[[strips.NEGATIVE, strips.POSITIVE, None], [None] * 3],
                                marks=[[None, "flip", None], [None] * 3], row_labels=["z", "w"],
                                col_labels=["t=0", "t=0.5", "t=1"], cell=32, title="pair 0")
    assert fig.width > 3 * 32 and fig.height > 2 * 32
    assert strips.cell_size(cut[0][0]) == 96 and strips.cell_size(Image.new("RGB", (1024, 1024))) == 160


# ------------------------------------------------------------------ long strips, many pairs and latents


def _strip_png(n: int, rows: int = 1, side: int = 8, seed: int = 0) -> bytes:
    """A make_grid-shaped PNG (2-px white padding) of `rows` x `n` random frames."""
    from PIL import Image

    from priorlab.dashboard.images import png_bytes

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (n * (side + 2) + 2, rows * (side + 2) + 2), (255, 255, 255))
    for r in range(rows):
        for c in range(n):
            frame = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
            img.paste(frame, (2 + c * (side + 2), 2 + r * (side + 2)))
    return png_bytes(img)


@pytest.fixture()
def big_store(tmp_path) -> tuple[Path, dict]:
    """Hand-written StyleGAN runs larger than one figure row: 20 samples, 14 pairs of 21
    frames with planted flips, 10 latents of 19 steps; no direction run."""
    s = Store(tmp_path / "big")
    params = {"generator": "random:8", "classifier": {"source": "builtin:redness", "threshold": 0.5}}
    s.register_runs("big", [{"run_id": "sample0", "kind": "stylegan-sample", "params": {**params, "n": 20}},
                            {"run_id": "interp0", "kind": "stylegan-interpolate",
                             "params": {**params, "pairs": 14, "steps": 21, "spaces": ["z_lerp", "w_lerp"]}},
                            {"run_id": "trav0", "kind": "stylegan-traverse",
                             "params": {**params, "n_latents": 10, "steps": 19}}])
    for rid in ("sample0", "interp0", "trav0"):
        s.start_run(rid)
    s.log_artifacts_many("sample0", [(0, "samples/z", _strip_png(20)), (0, "samples/w", _strip_png(20, seed=1)),
                                     (0, "grid", _strip_png(20, 2))])
    s.log_metrics_rows([("sample0", i, f"prob/{sp}", i / 20) for i in range(20) for sp in ("z", "w")])
    s.finish_run("sample0", "done", summary={"z_diversity": 0.1, "w_diversity": 0.2, "n": 20})

    flips = {("z_lerp", p): 3 + p % 5 for p in range(14)} | {("w_lerp", p): 9 + p % 7 for p in range(14)}
    flips["w_lerp", 13] = None  # never flips
    rows, arts, summary = [], [], {"steps": 21, "pairs": 14, "positive": "redder", "negative": "less red"}
    for (space, p), f in flips.items():
        for k in range(21):
            lab = int(f is not None and k >= f)
            rows += [("interp0", k, f"label/{space}/pair{p}", lab), ("interp0", k, f"prob/{space}/pair{p}", 0.2 + 0.6 * lab)]
        arts.append((0, f"strip/{space}/pair{p}", _strip_png(21, seed=p)))
        summary[f"{space}_flip_step_pair{p}"] = f
    for space in ("z_lerp", "w_lerp"):
        summary[f"{space}_flip_rate"] = 1.0
    s.log_metrics_rows(rows)
    s.log_artifacts_many("interp0", arts)
    s.finish_run("interp0", "done", summary=summary)

    alphas = np.linspace(-3, 3, 19)
    rows = [("trav0", k, "alpha", float(a)) for k, a in enumerate(alphas)]
    arts = []
    for space in ("z", "w"):
        for k, a in enumerate(alphas):
            for who in [f"latent{i}" for i in range(10)] + ["mean"]:
                rows += [("trav0", k, f"prob/{space}/{who}", 0.5 + a / 6.5),
                         ("trav0", k, f"ssim/{space}/{who}", 1 - abs(a) / 6),
                         ("trav0", k, f"pixel_dist/{space}/{who}", abs(a) / 20)]
        arts += [(0, f"strip/{space}/latent{i}", _strip_png(19, seed=i)) for i in range(10)]
    s.log_metrics_rows(rows)
    s.log_artifacts_many("trav0", arts)
    s.finish_run("trav0", "done", summary={"z_prob_delta": 0.9, "w_prob_delta": 0.9, "z_ssim_at_max": 0.5,
                                           "w_ssim_at_max": 0.5, "z_success_rate": 1.0, "w_success_rate": 1.0})
    return tmp_path / "big", flips


def test_long_strips_many_pairs_and_latents(monkeypatch, big_store):
    store, flips = big_store
    at = open_page(monkeypatch, store, sg_pair="13")
    assert_ok(at)
    caps = " ".join(captions(at))
    assert "the first 12 of 20 per row" in caps
    assert "Pair 13: the label flips z_lerp at frame 6, w_lerp never (frames 0–20)" in caps
    assert "of the 21 frames shown" in caps
    assert at.selectbox(key="sg_pair").value == 13, "14 pairs: a select box, not a row of buttons"
    shown = metrics(at)
    for space in ("z_lerp", "w_lerp"):
        got = [f for (s, _), f in flips.items() if s == space and f is not None]
        assert shown[f"{space}: mean flip frame"] == f"{np.mean(got):.2f}"
    assert "No stylegan-direction runs in the store." in texts(at, "info"), "none was asked for: no \"yet\""
    assert at.select_slider(key="sg_latents").options == ["0–7", "8–9"]
    assert sum(c.startswith(("z: each row", "w: each row")) for c in captions(at)) == 2


# ------------------------------------------------------------------ every kind on the other pages


@pytest.mark.parametrize("kind, rows, cols", [
    ("stylegan-sample", 2, 4),                 # z row and w row, n=4 samples
    ("stylegan-interpolate", 3 * PAIRS, STEPS),  # one row per pair and space, a column per frame
    ("stylegan-traverse", 2 * 3, 5),           # one row per space and latent, a column per alpha
])
def test_grid_lays_out_each_stylegan_kind(monkeypatch, sg_store, kind, rows, cols):
    """Today a StyleGAN kind keeps DIP's Image/Task selectors and ends in "No output snapshots"."""
    at = apptest_helpers.open_page(monkeypatch, sg_store, "grid", grid_kind=kind)
    assert_ok(at)
    assert "No output snapshots" not in texts(at, "info")
    assert not [s for s in at.selectbox if s.key in ("grid_image", "grid_task")], "DIP's selectors"
    assert f"**{rows} rows × {cols} columns**" in texts(at, "markdown")
    assert len(at.get("image")) == 1
    assert any(b.proto.label.startswith("Download PNG") for b in at.get("download_button"))


def test_grid_does_not_offer_direction_runs(monkeypatch, sg_store):
    at = apptest_helpers.open_page(monkeypatch, sg_store, "grid")
    assert_ok(at)
    offered = at.get("button_group")[0].proto.options if at.get("button_group") else []
    labels = [o.content for o in offered]
    assert "stylegan-direction" not in labels and "stylegan-sample" in labels
    assert "direction runs store no image grid" in texts(at, "caption")


def test_compare_shows_each_stylegan_kinds_own_images(monkeypatch, sg_store):
    """Today: 9 "missing" clean/corrupted/output tiles and "no output images"."""
    runs = by_kind(sg_store)
    ids = [runs.loc[k, "run_id"] for k in ("stylegan-sample", "stylegan-interpolate", "stylegan-direction",
                                           "stylegan-traverse")]
    at = apptest_helpers.open_page(monkeypatch, sg_store, "compare", runs=",".join(ids))
    assert_ok(at)
    shown = captions(at)
    assert not {"clean", "corrupted"} & set(shown) and not any(c.startswith("output") for c in shown)
    assert "grid" in shown and "extremes" in shown and "grid/z" in shown and "grid/w" in shown
    assert sum(c.startswith("strip/") and c.endswith("pair0") for c in shown) == 3
    assert "no output images" not in texts(at, "info")
    assert at.get("vega_lite_chart"), "the per-frame probability curves"


def test_analysis_compares_z_and_w_for_stylegan_kinds(monkeypatch, sg_store):
    """Today: "No parameter varies among these runs." and nothing else."""
    run = by_kind(sg_store).loc["stylegan-direction"]
    at = apptest_helpers.open_page(monkeypatch, sg_store, "analysis", an_kind="stylegan-direction")
    assert_ok(at)
    assert "z against w" in [s.value for s in at.subheader]
    table = at.dataframe[0].value
    assert table.loc["val_accuracy", "z"] == pytest.approx(run["z_val_accuracy"])
    assert table.loc["val_accuracy", "w"] == pytest.approx(run["w_val_accuracy"])
    assert "no factor to compare" in texts(at, "info")
    assert "No parameter varies" not in texts(at, "info")

    trav = by_kind(sg_store).loc["stylegan-traverse"]
    at = apptest_helpers.open_page(monkeypatch, sg_store, "analysis", an_kind="stylegan-traverse",
                                   an_sg_measure="ssim_at_max")
    assert_ok(at)
    table = at.dataframe[0].value
    assert table.loc["ssim_at_max", "z"] == pytest.approx(trav["z_ssim_at_max"])
    interp = by_kind(sg_store).loc["stylegan-interpolate"]
    at = apptest_helpers.open_page(monkeypatch, sg_store, "analysis", an_kind="stylegan-interpolate")
    assert_ok(at)
    table = at.dataframe[0].value
    assert table.loc["flip_step_mean", "w_lerp"] == pytest.approx(interp["w_lerp_flip_step_mean"], nan_ok=True)


def test_traversal_space_tab_is_in_the_url(monkeypatch, sg_store):
    """The z/w tab is bound to `?sg_space=` (today it is not kept in a copied link)."""
    at = open_page(monkeypatch, sg_store, sg_space="w space")
    assert_ok(at)
    tabs = at.get("tab")
    assert [t.label for t in tabs] == ["z space", "w space"]
    container = at.get("tab_container")[0].proto.tab_container
    assert container.query_param_key == "sg_space"
    assert at.session_state["sg_space"] == "w space", "the link opens on the w tab"


def test_corrupted_strip_is_drawn_as_corrupted(monkeypatch, sg_copy):
    """A strip whose file no longer matches its sha256 is not decoded as if it were fine."""
    from priorlab.dashboard import data, images

    store = Store(sg_copy)
    arts = store.artifacts(names=["grid"])
    sha = arts["sha256"].iloc[0]
    path = store.artifact_path(sha)
    from PIL import Image as PILImage

    bad = PILImage.new("RGB", tuple(int(x) for x in arts[["width", "height"]].iloc[0]), (0, 255, 0))
    path.write_bytes(images.png_bytes(bad))  # a valid PNG, but not the bytes that were stored
    monkeypatch.setenv("PRIORLAB_STORE", str(sg_copy))
    d = data.Data(str(sg_copy))
    img = d.image(sha)
    assert img is not None and img.getpixel((1, 1)) == images.PLACEHOLDER_BG
    assert d.png(sha) is None, "the download offers no corrupted bytes"


def test_a_verdict_is_bold_only_where_its_claim_decides():
    """The sentence and the claims table give one answer: bold when the claim is supported or
    contradicted, hedged when it has too little data."""
    from priorlab.analysis import findings
    from priorlab.analysis.stylegan import TraversalAnswer
    from priorlab.dashboard import sg_answers

    by = pd.DataFrame({"ssim_loss_per_dprob": [0.9, 0.3], "ssim_at_max": [0.5, 0.6],
                       "pixel_dist_at_max": [0.2, 0.1]}, index=pd.Index(["z", "w"], name="space"))
    ta = TraversalAnswer(by_space=by, kept=[], lost=["z", "w"], keeps_more="w", ratio=3.0)
    decided = sg_answers._space(ta, {sg_answers.KEEPS: findings.SUPPORTED})
    assert "**w keeps more of the original features** (3.00× less" in decided
    hedged = sg_answers._space(ta, {sg_answers.KEEPS: findings.NOT_ENOUGH})
    assert "**w keeps" not in hedged and "w lost 3.00× less here (too few runs to call it" in hedged
    assert "Identity is **not preserved**" in sg_answers._identity(ta, {sg_answers.IDENTITY: findings.SUPPORTED})
    assert "**not preserved**" not in sg_answers._identity(ta, {})
