"""Issue 18 defect 11 (dashboard wording): paired flip counts in words, interrupted runs, run labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorlab import vocab
from priorlab.analysis.store import Store

pytest.importorskip("streamlit")

from apptest_helpers import assert_ok, open_page  # noqa: E402


def interrupted_store(root: Path) -> Path:
    """Two finished interpolations whose label flips at the same frame in z and in w (every pair),
    and an interrupted sweep that left a sample run pending."""
    store = Store(root)
    store.upsert_sweep("interp", "kind: stylegan-interpolate\n", "host", status="done")
    for seed in (0, 1):
        rid = f"interp{seed}"
        store.register_runs("interp", [{"run_id": rid, "kind": vocab.SG_INTERPOLATE,
                                        "params": {"generator": "random:16", "steps": 8, "seed": seed}}])
        store.start_run(rid)
        summary = {"steps": 8}
        for space in vocab.INTERP_SPACES:
            summary[vocab.space_key(space, "flip_rate")] = 1.0
            for pair in (0, 1):
                summary[vocab.flip_step_key(space, pair)] = 3
        store.finish_run(rid, vocab.DONE, summary)
    store.upsert_sweep("samples", "kind: stylegan-sample\n", "host", status="interrupted")
    store.register_runs("samples", [{"run_id": "sample0", "kind": vocab.SG_SAMPLE,
                                     "params": {"generator": "random:16", "n": 4, "seed": 0}}])
    return root


def _text(at) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption]
                    + [w.value for w in at.warning] + [i.value for i in at.info])


def test_stylegan_page_says_flips_at_the_same_frame_not_sooner_in_0_later_in_0(monkeypatch, tmp_path):
    at = open_page(monkeypatch, interrupted_store(tmp_path / "s"), "stylegan")
    assert_ok(at)
    text = _text(at)
    assert "sooner in 0" not in text and "later in 0" not in text, text
    assert "at the same frame as w lerp in all 4 pairs" in text, text


def test_findings_explanation_leaves_out_zero_counts(monkeypatch, tmp_path):
    at = open_page(monkeypatch, interrupted_store(tmp_path / "s"), "findings")
    assert_ok(at)
    text = _text(at) + " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "sooner in 0" not in text and "later in 0" not in text, text


def test_an_interrupted_sweeps_runs_say_how_to_rerun_not_press_reload(monkeypatch, tmp_path):
    at = open_page(monkeypatch, interrupted_store(tmp_path / "s"), "stylegan")
    assert_ok(at)
    text = _text(at)
    assert "press *Reload data*" not in text and "pending or running" not in text, text
    warning = " ".join(w.value for w in at.warning)
    assert "interrupted" in warning and "priorlab sweep" in warning, warning


def test_run_labels_are_capped_and_unique():
    import pandas as pd

    from priorlab.dashboard import data

    runs = pd.DataFrame({"run_id": [f"{i:016x}" for i in range(3)], "kind": "dip",
                         **{f"parameter_{k}": [f"a-long-value-{k}-{i}" for i in range(3)] for k in range(12)}})
    labels = data.run_labels(runs, [f"parameter_{k}" for k in range(12)])
    assert labels.str.len().max() <= 80 and labels.is_unique, labels.tolist()
    assert labels.iloc[0].startswith("00000000 · parameter_0=")


def test_every_run_label_is_capped_and_names_only_the_classifier_settings_that_differ():
    """The StyleGAN page's run captions (data.labels) were not capped: a classifier dict filled
    ~250 characters with settings every run shares."""
    import pandas as pd

    from priorlab.dashboard import data

    clf = {"source": "builtin:brightness", "weights": None, "threshold": 0.5, "center": "auto"}
    runs = pd.DataFrame({"run_id": ["a" * 16, "b" * 16, "c" * 16], "kind": "stylegan-interpolate",
                         "classifier": [clf, {**clf, "threshold": 0.7}, clf], "steps": [5, 5, 9]})
    runs.attrs["param_columns"] = ["classifier", "steps"]  # as Store.runs() marks them
    labels = data.data_labels(runs)
    assert labels["b" * 16] == "bbbbbbbb · classifier.threshold=0.7 steps=5", labels
    assert all(len(t) <= data.LABEL_MAX for t in labels.values())
