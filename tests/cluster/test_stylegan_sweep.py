"""The StyleGAN chain as sweep kinds over the session's Ray cluster: every job lands in the store,
and the sharded direction job scores its shards as separate trials."""

from __future__ import annotations

import textwrap

from priorlab.analysis.store import Store
from priorlab.cluster.sweep import EXIT_OK, run_sweep

CONFIG = textwrap.dedent(
    """
    name: sg-test
    kind: stylegan-sample
    fixed:
      generator: "random:16"
      seed: 0
      batch_size: 16
      classifier: {source: "builtin:redness", positive: redder, negative: less red}
      calibration_samples: 64
    groups:
      - {kind: stylegan-sample, fixed: {n: 4}}
      - {kind: stylegan-interpolate, fixed: {pairs: 2, steps: 7}}
      - {kind: stylegan-direction, fixed: {n_samples: 256, keep_fraction: 0.25, n_shards: 3}}
      - kind: stylegan-traverse
        fixed: {n_latents: 3, steps: 5, alpha_max: 2.0, direction: {n_samples: 256, keep_fraction: 0.25}}
    resources: {cpu: 1}
    """
)


def test_stylegan_jobs_run_as_trials_and_land_in_the_store(ray_cluster, tmp_path):
    cfg = tmp_path / "sg.yaml"
    cfg.write_text(CONFIG)
    store_dir = tmp_path / "store"
    assert run_sweep(str(cfg), store_dir=str(store_dir), echo=lambda s: None) == EXIT_OK
    store = Store(store_dir)
    runs = store.runs(sweep="sg-test").set_index("kind")
    assert sorted(runs.index) == ["stylegan-direction", "stylegan-interpolate", "stylegan-sample", "stylegan-traverse"]
    assert (runs["status"] == "done").all()

    # Direction: the shards scored by their own trials were gathered (and removed once the run
    # was done: they are only kept for resuming), and the SVM separates w.
    assert not (store_dir / "shards" / runs.loc["stylegan-direction", "run_id"]).exists()
    assert runs.loc["stylegan-direction", "w_val_accuracy"] > 0.8

    # Interpolation: the flip step is recorded for every space; per-frame labels are stored.
    interp = runs.loc["stylegan-interpolate"]
    assert {"z_lerp_flip_rate", "w_lerp_flip_rate"} <= set(interp.dropna().index)
    labels = store.metrics([interp["run_id"]])
    assert labels["name"].str.startswith("label/").any()

    # Traversal: moving along +n raises the attribute probability.
    trav = runs.loc["stylegan-traverse"]
    assert trav["w_prob_delta"] > 0 and trav["w_mean_prob_monotone"] == 1

    arts = store.artifacts(list(runs["run_id"]))
    assert {"grid", "extremes"} <= set(arts["name"]) and arts["name"].str.startswith("strip/").any()
