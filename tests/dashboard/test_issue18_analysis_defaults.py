"""Issue 18 defect 9: the Analysis page's defaults for StyleGAN kinds, the per-run stop metrics,
and a continuous parameter shown as a few ranges rather than one category per raw float."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorlab import vocab
from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402

LRS = [0.0001 * 1.5 ** i for i in range(12)]  # a sampled lr: 12 distinct floats over ~2 decades


def mixed_store(root: Path) -> Path:
    """stylegan-direction runs varying seed and n_samples (with a `resolution` summary that sorts
    first), and DIP runs with a continuous lr and early-stopping detectors."""
    store = Store(root)
    store.upsert_sweep("dirs", "kind: stylegan-direction\n", "host", status="done")
    for i in range(4):
        rid = f"dir{i}"
        store.register_runs("dirs", [{"run_id": rid, "kind": vocab.SG_DIRECTION, "params": {
            "generator": "random:16", "seed": i % 2, "n_samples": (200, 400)[i // 2]}}])
        store.start_run(rid)
        store.finish_run(rid, vocab.DONE, {"resolution": 16, vocab.space_key("z", "val_accuracy"): 0.7 + 0.01 * i,
                                           vocab.space_key("w", "val_accuracy"): 0.8 + 0.01 * i})
    store.upsert_sweep("lrs", "kind: dip\n", "host", status="done")
    for i, lr in enumerate(LRS):
        rid = f"dip{i}"
        store.register_runs("lrs", [{"run_id": rid, "kind": vocab.DIP, "params": {
            "image": "astronaut", "arch": "skip", "lr": lr, "seed": 0}}])
        store.start_run(rid)
        store.finish_run(rid, vocab.DONE, {"best_psnr": 20 + i * 0.1,
                                           vocab.stop_key("step", "wmv"): 100 + i, vocab.stop_key("gap", "wmv"): 0.1,
                                           vocab.stop_key("step", "rw"): 120 + i, vocab.stop_key("gap", "rw"): 0.3})
    return root


def test_stylegan_direction_defaults_to_z_val_accuracy_a_non_seed_factor_and_no_stopping(monkeypatch, tmp_path):
    at = open_page(monkeypatch, mixed_store(tmp_path / "s"), "analysis", an_kind=vocab.SG_DIRECTION)
    assert_ok(at)
    assert at.selectbox(key="metric").value == vocab.space_key("z", "val_accuracy")
    assert at.selectbox(key="factor").value == "n_samples"
    assert "Stopping" not in [s.value for s in at.subheader]


def test_dip_offers_stop_step_and_stop_gap_as_metrics(monkeypatch, tmp_path):
    at = open_page(monkeypatch, mixed_store(tmp_path / "s"), "analysis", an_kind=vocab.DIP, factor="lr")
    assert_ok(at)
    options = at.selectbox(key="metric").options
    assert "stop_step" in options and "stop_gap" in options, options
    assert at.selectbox(key="metric").value == "best_psnr"
    at.selectbox(key="metric").set_value("stop_gap").run()
    assert_ok(at)
    assert "Stopping" in [s.value for s in at.subheader]


def test_a_continuous_lr_is_binned_into_few_ordered_ranges(monkeypatch, tmp_path):
    at = open_page(monkeypatch, mixed_store(tmp_path / "s"), "analysis", an_kind=vocab.DIP, factor="lr")
    assert_ok(at)
    table = next(df.value for df in at.dataframe if "lr" in df.value.columns)
    levels = [str(v) for v in table["lr"]]
    assert 2 <= len(levels) <= 8, levels  # not 12 raw floats
    assert all(len(v) <= 20 for v in levels), levels  # 3 significant digits, not 0.00022500000000000002
    assert levels[0].startswith("0.0001") and levels[-1].endswith("0.00865"), levels  # in numeric order
    assert sum(table["n"]) == len(LRS)
    assert "lr binned into" in " ".join(c.value for c in at.caption)


def test_bins_keep_integers_and_few_values_as_they_are():
    import pandas as pd

    from priorlab.analysis.choices import bin_numeric

    assert bin_numeric(pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])) is None  # seeds, widths
    assert bin_numeric(pd.Series([0.1, 0.5, 0.1])) is None
    assert bin_numeric(pd.Series(["a"] * 10)) is None
    b = bin_numeric(pd.Series([0.5 + 0.01 * i for i in range(20)]), 4)  # quantiles
    assert sorted(b.unique()) == ["0.5–0.54", "0.55–0.59", "0.6–0.64", "0.65–0.69"], sorted(b.unique())
    b = bin_numeric(pd.Series([10.0 ** (i / 4) for i in range(13)]), 3)  # three decades: log bins
    assert sorted(b.unique()) == ["1–10", "17.8–100", "178–1e+03"], sorted(b.unique())
