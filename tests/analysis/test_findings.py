"""The report's claims checked on hand-made grids where the answer is planted."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import findings, stylegan
from priorlab.analysis.findings import CLAIMS, CONTRADICTED, NOT_ENOUGH, SUPPORTED, Claim

PARAMS = ["arch", "depth", "loss", "task", "sigma", "region", "image", "seed", "iterations", "snapshots"]
VERDICTS = {SUPPORTED, CONTRADICTED, NOT_ENOUGH}
DIP = [c.id for c in CLAIMS if c.kind == "dip"]  # the StyleGAN claims have their own tests below


def study(sign: float = 1.0, noise: float = 0.2, seeds: int = 3, iterations=(1000, 1500),
          rng_seed: int = 0) -> pd.DataFrame:
    """A DIP grid where every effect has the report's direction (sign=+1), the reverse (-1)
    or none (0). PSNR in dB, SSIM a rescaled copy so both metrics agree."""
    rng = np.random.default_rng(rng_seed)
    stop_rng = np.random.default_rng(rng_seed + 1)  # its own stream: the PSNR draws stay as they were
    settings = [("denoise", 0.1, None), ("denoise", 0.5, None), ("inpaint", 0.1, 32), ("inpaint", 0.1, 64)]
    effect = {"seed-double": 0.8, "seed-single": 0.0, 2: 0.6, 4: -0.6, "l2": 1.0, "l1": 0.0, "kl": -1.0,
              0.1: 1.5, 0.5: -1.5, 32: 1.0, 64: -1.0, None: 0.0}
    rows = []
    for arch, depth, loss, (task, sigma, region), image, seed, iters in itertools.product(
            ["seed-double", "seed-single"], [2, 4], ["l2", "l1", "kl"], settings, ["astronaut", "coffee"],
            range(seeds), iterations):
        planted = effect[arch] + effect[depth] + effect[loss] + effect[region] + (effect[sigma] if task == "denoise" else 0)
        more = (iters - 1000) / 500 * (sigma == 0.5)
        psnr = 24 + sign * planted + rng.normal(0, noise)
        rows.append({
            "run_id": f"r{len(rows)}", "sweep": "study", "kind": "dip", "status": "done",
            "arch": arch, "depth": depth, "loss": loss, "task": task, "sigma": sigma, "region": region,
            "image": image, "seed": seed, "iterations": iters, "snapshots": [iters // 2, iters],
            "best_psnr": psnr, "ssim_at_best": 0.5 + psnr / 100, "final_psnr": psnr - 1 + sign * more,
            "best_psnr_hole": psnr - 4 if task == "inpaint" else None, "wall_s": 1.0,
            # Where a detector stops: past 1000 iterations when longer runs help (sign=+1).
            "stop_step_wmv": min(iters, 1000 + sign * 250 + stop_rng.normal(0, 30)), "stop_gap_wmv": 0.3})
    df = pd.DataFrame(rows)
    df.attrs["param_columns"] = list(PARAMS)
    df.attrs["summary_columns"] = ["best_psnr", "ssim_at_best", "final_psnr", "best_psnr_hole", "wall_s"]
    return df


@pytest.fixture(scope="module")
def planted():
    return findings.evaluate(study(+1)).set_index("claim")


@pytest.fixture(scope="module")
def reversed_():
    return findings.evaluate(study(-1)).set_index("claim")


def test_claims_are_well_formed():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert c.text and c.measure
        assert c.evaluator is not None or (c.factor and c.better is not None and c.worse is not None)


def test_planted_grid_supports_every_claim_but_the_opposite_one(planted):
    assert list(planted.columns) == findings.COLUMNS[1:]
    for claim, row in planted.loc[DIP].iterrows():
        expected = CONTRADICTED if claim == "arch2-fewer-artifacts-denoise" else SUPPORTED
        assert row["verdict"] == expected, (claim, row["explanation"])
        assert row["n_pairs"] >= 3 and row["p_value"] < 0.05


def test_reversed_grid_contradicts_every_claim_but_the_opposite_one(reversed_):
    for claim, row in reversed_.loc[DIP].iterrows():
        expected = SUPPORTED if claim == "arch2-fewer-artifacts-denoise" else CONTRADICTED
        assert row["verdict"] == expected, (claim, row["explanation"])
        assert "opposite" in row["explanation"] or expected == SUPPORTED


def test_numbers_are_better_minus_worse(planted, reversed_):
    assert planted.loc["loss-l2-beats-l1", "mean_diff"] == pytest.approx(1.0, abs=0.1)
    assert planted.loc["loss-l1-beats-kl", "win_rate"] > 0.95
    assert reversed_.loc["loss-l1-beats-kl", "mean_diff"] == pytest.approx(-1.0, abs=0.1)
    assert planted.loc["sigma-0.5-worse", "mean_diff"] == pytest.approx(3.0, abs=0.1)


def test_metric_choices(planted):
    assert planted.loc["depth2-sharper-denoise", "metric"] == "ssim_at_best"
    assert planted.loc["region-64-worse", "metric"] == "best_psnr_hole"
    assert planted.loc["more-iterations-help-sigma-0.5", "metric"] == "final_psnr"
    assert "1500 vs 1000" in planted.loc["more-iterations-help-sigma-0.5", "comparison"]
    assert "task=denoise" in planted.loc["depth2-sharper-denoise", "filter"]


def test_metric_falls_back_when_absent():
    df = study().drop(columns=["best_psnr_hole", "ssim_at_best"])
    out = findings.evaluate(df).set_index("claim")
    assert out.loc["region-64-worse", "metric"] == "best_psnr"
    assert out.loc["depth2-sharper-inpaint", "metric"] == "ssim_at_best"  # neither SSIM recorded
    assert out.loc["depth2-sharper-inpaint", "verdict"] == NOT_ENOUGH


def test_the_two_architecture_claims_never_both_hold(planted, reversed_):
    for table in (planted, reversed_, findings.evaluate(study(0)).set_index("claim")):
        verdicts = table.loc[["arch1-better-denoise", "arch2-fewer-artifacts-denoise"], "verdict"]
        assert list(verdicts).count(SUPPORTED) <= 1


def test_no_effect_is_not_enough_data_with_a_reason():
    out = findings.evaluate(study(0, noise=0.5)).set_index("claim")
    row = out.loc["loss-l2-beats-l1"]
    assert row["verdict"] == NOT_ENOUGH and row["n_pairs"] > 20
    assert row["explanation"].startswith("no significant difference over")


def test_too_few_runs_is_not_enough_data():
    df = study(+1).sample(n=8, random_state=0)
    out = findings.evaluate(df)
    assert set(out["verdict"]) == {NOT_ENOUGH}
    assert out.set_index("claim").loc[DIP, "explanation"].str.contains("matched pair|two or more|more than 1000 iterations").all()


def test_two_pairs_are_not_enough():
    df = study(+1, noise=0.0)
    df = df[(df["task"] == "denoise") & (df["arch"] == "seed-double") & (df["depth"] == 2) & (df["sigma"] == 0.1)
            & (df["iterations"] == 1000) & (df["image"] == "coffee") & (df["seed"] < 2)
            | (df["run_id"] == "r0")]  # an l2 run on astronaut: no l1 partner
    row = findings.evaluate(df).set_index("claim").loc["loss-l2-beats-l1"]
    assert row["verdict"] == NOT_ENOUGH and row["n_pairs"] == 2 and row["mean_diff"] == pytest.approx(1.0)
    assert row["explanation"] == "only 2 matched pairs (need 3); 1 run had no partner"


def test_only_one_iterations_level():
    out = findings.evaluate(study(+1, iterations=(1000,))).set_index("claim")
    row = out.loc["more-iterations-help-sigma-0.5"]
    assert row["verdict"] == NOT_ENOUGH and "found 1000" in row["explanation"] and row["n_pairs"] == 0
    assert out.loc["loss-l2-beats-l1", "verdict"] == SUPPORTED


def test_unfinished_runs_do_not_count():
    df = study(+1)
    df.loc[df["loss"] == "l1", "status"] = "error"
    out = findings.evaluate(df).set_index("claim")
    assert out.loc["loss-l2-beats-l1", "verdict"] == NOT_ENOUGH
    assert out.loc["loss-l2-beats-l1", "n_pairs"] == 0


@pytest.mark.parametrize("df", [pd.DataFrame(), study().iloc[0:0],
                                pd.DataFrame({"run_id": ["x"], "kind": ["dip"], "status": ["done"]})])
def test_empty_runs_give_every_claim_a_verdict(df):
    out = findings.evaluate(df)
    assert out["claim"].tolist() == [c.id for c in CLAIMS]
    assert set(out["verdict"]) == {NOT_ENOUGH} and out["explanation"].str.len().gt(0).all()


def test_every_claim_gets_a_verdict(planted):
    assert len(planted) == len(CLAIMS) and set(planted["verdict"]) <= VERDICTS


def test_a_custom_claim_is_one_entry():
    """The StyleGAN claims will look like these: a lower-is-better paired claim on another
    kind, and one with its own evaluator."""
    rng = np.random.default_rng(0)
    rows = [{"run_id": f"i{k}", "kind": "stylegan-interpolate", "status": "done", "space": space,
             "pair": k, "flip_step": (2 if space == "z" else 5) + rng.integers(-1, 2)}
            for k in range(12) for space in ("z", "w")]
    df = pd.DataFrame(rows)
    df.attrs["param_columns"] = ["space", "pair"]

    def flips_counted(claim, runs):
        n = int(runs["flip_step"].notna().sum())
        return findings.make_row(claim, "flip_step", verdict=SUPPORTED if n else NOT_ENOUGH,
                                 explanation=f"{n} interpolations with a flip")

    def broken(claim, runs):
        raise RuntimeError("classifier missing")

    claims = [
        Claim("z-flips-sooner", "The prediction flips sooner along z than along w.",
              "Step of the first flip, z vs w on the same pairs.", factor="space", better="z",
              worse="w", metric="flip_step", higher_is_better=False, kind="stylegan-interpolate"),
        Claim("flips-exist", "Interpolations change the prediction.", "Count of flips.",
              kind="stylegan-interpolate", evaluator=flips_counted),
        Claim("broken", "A claim whose check fails.", "Nothing.", kind="stylegan-interpolate",
              evaluator=broken),
    ]
    out = findings.evaluate(pd.concat([df, study().head(10)]), claims).set_index("claim")
    assert out.loc["z-flips-sooner", "verdict"] == SUPPORTED
    assert out.loc["z-flips-sooner", "mean_diff"] == pytest.approx(-3, abs=0.6)
    assert out.loc["flips-exist", "explanation"] == "24 interpolations with a flip"
    assert out.loc["broken", "verdict"] == NOT_ENOUGH
    assert "classifier missing" in out.loc["broken", "explanation"]


# ------------------------------------------------------------------ the StyleGAN claims

SG = ["stylegan-z-flips-sooner", "stylegan-w-keeps-features", "stylegan-identity-not-preserved",
      "stylegan-traversals-change-attribute"]


def stylegan_study(*, z_flip=2.0, w_flip=5.0, z_loss=0.8, w_loss=0.5, ssim=(0.6, 0.7), delta=(0.7, 0.9),
                   monotone=(0.8, 1.0), seeds=6, pairs=3, steps=10, noise=0.3, rng_seed=0) -> pd.DataFrame:
    """Summaries shaped like the real stylegan-interpolate / -traverse runs (the keys their jobs
    write; `steps` is a parameter, so the store names the summary key `summary_steps`).
    `ssim`, `delta`, `monotone`: (z, w) values, jittered per run."""
    rng = np.random.default_rng(rng_seed)
    stop_rng = np.random.default_rng(rng_seed + 1)  # its own stream: the PSNR draws stay as they were
    rows = []
    for seed in range(seeds):
        row = {"run_id": f"int{seed}", "kind": "stylegan-interpolate", "status": "done", "seed": seed,
               "steps": steps, "pairs": pairs, "summary_steps": steps, "summary_pairs": pairs}
        for space, at in (("z_lerp", z_flip), ("z_slerp", z_flip), ("w_lerp", w_flip)):
            flips = [int(np.clip(round(at + rng.normal(0, noise)), 1, steps - 1)) for _ in range(pairs)]
            for i, f in enumerate(flips):
                row[f"{space}_flip_step_pair{i}"] = f
            row[f"{space}_flip_rate"] = 1.0
            row[f"{space}_flip_step_mean"] = float(np.mean(flips))
        rows.append(row)
        t = {"run_id": f"trav{seed}", "kind": "stylegan-traverse", "status": "done", "seed": seed, "steps": 7,
             "summary_steps": 7}
        for j, space in enumerate(("z", "w")):
            j_noise = lambda: rng.normal(0, 0.02)  # noqa: E731
            t[f"{space}_prob_delta"] = delta[j] + j_noise()
            t[f"{space}_prob_monotone_frac"] = monotone[j]
            t[f"{space}_success_rate"] = 0.75
            t[f"{space}_ssim_at_max"] = ssim[j] + j_noise()
            t[f"{space}_pixel_dist_at_max"] = 0.1 + j_noise()
            t[f"{space}_ssim_loss_per_dprob"] = (z_loss, w_loss)[j] + j_noise()
            t[f"{space}_pixel_dist_per_dprob"] = 0.3 + j_noise()
        rows.append(t)
    df = pd.DataFrame(rows)
    df.attrs["param_columns"] = ["seed", "steps", "pairs"]
    df.attrs["summary_columns"] = [c for c in df.columns if c not in ("run_id", "kind", "status", "seed", "steps", "pairs")]
    return df


def sg_eval(df: pd.DataFrame) -> pd.DataFrame:
    return findings.evaluate(df).set_index("claim").loc[SG]


def test_stylegan_claims_supported_on_the_reports_picture():
    out = sg_eval(stylegan_study())
    for claim, row in out.iterrows():
        assert row["verdict"] == SUPPORTED, (claim, row["explanation"])
        assert row["n_pairs"] >= 3
    flips = out.loc["stylegan-z-flips-sooner"]
    assert flips["n_pairs"] == 18 and flips["metric"] == "flip_frac"
    assert flips["mean_diff"] == pytest.approx(-3 / 9, abs=0.08)  # 3 frames sooner of 9 steps
    assert "z flips sooner" in flips["explanation"] and "z flips sooner than w_lerp in" in flips["explanation"]
    keeps = out.loc["stylegan-w-keeps-features"]
    assert keeps["metric"] == "ssim_loss_per_dprob" and keeps["n_pairs"] == 6
    assert keeps["mean_diff"] == pytest.approx(-0.3, abs=0.05)
    ident = out.loc["stylegan-identity-not-preserved"]
    assert ident["n_pairs"] == 12 and ident["mean_diff"] == pytest.approx(findings.IDENTITY_SSIM - 0.65, abs=0.03)
    assert str(findings.IDENTITY_SSIM) in ident["explanation"]
    assert out.loc["stylegan-traversals-change-attribute", "mean_diff"] == pytest.approx(0.8, abs=0.03)


def test_stylegan_claims_contradicted_when_reversed():
    out = sg_eval(stylegan_study(z_flip=6, w_flip=2, z_loss=0.4, w_loss=0.9, ssim=(0.97, 0.98),
                                 delta=(-0.6, -0.7)))
    for claim, row in out.iterrows():
        assert row["verdict"] == CONTRADICTED, (claim, row["explanation"])
        assert "opposite" in row["explanation"]


def test_stylegan_claims_without_an_effect_are_not_enough_data():
    out = sg_eval(stylegan_study(z_flip=4, w_flip=4, noise=0.0, z_loss=0.6, w_loss=0.6,
                                 ssim=(0.9, 0.9), delta=(0.0, 0.0)))
    assert set(out["verdict"]) == {NOT_ENOUGH}
    assert out.loc["stylegan-z-flips-sooner", "explanation"].startswith("no significant difference over 18 pairs")
    assert "z flips at the same frame as w_lerp in all 18 pairs" in out.loc["stylegan-z-flips-sooner", "explanation"]


def test_three_seeds_say_why_they_cannot_decide():
    row = sg_eval(stylegan_study(seeds=3)).loc["stylegan-w-keeps-features"]
    assert row["verdict"] == NOT_ENOUGH and row["n_pairs"] == 3 and row["win_rate"] == 1.0
    assert "signed-rank test cannot reach p < 0.05: run more seeds" in row["explanation"]


def test_attribute_that_moves_but_not_steadily_is_not_supported():
    row = sg_eval(stylegan_study(monotone=(0.2, 0.3))).loc["stylegan-traversals-change-attribute"]
    assert row["verdict"] == NOT_ENOUGH and "not steadily" in row["explanation"]
    assert "monotone along 25%" in row["explanation"]


def test_one_run_is_not_enough_but_shows_its_numbers():
    out = sg_eval(stylegan_study(seeds=1, pairs=2))
    assert set(out["verdict"]) == {NOT_ENOUGH}
    assert out.loc["stylegan-z-flips-sooner", "explanation"].startswith("only 2 matched pairs (need 3)")
    assert out.loc["stylegan-w-keeps-features", "explanation"].startswith("only 1 traverse run (need 3)")
    assert "w lower in 1 of 1 runs" in out.loc["stylegan-w-keeps-features", "explanation"]
    ident = out.loc["stylegan-identity-not-preserved", "explanation"]
    assert ident.startswith("only 2 run × space values (need 3)") and "z 0.6" in ident


def test_pairs_that_never_flip_are_left_out_and_steps_normalise():
    df = stylegan_study(noise=0.0)
    interp = df["kind"] == "stylegan-interpolate"
    df.loc[df["run_id"] == "int0", "w_lerp_flip_step_pair0"] = np.nan  # never flips along w
    df.loc[df["run_id"] == "int1", ["summary_steps", "steps"]] = 19  # twice the frames: frames 4 and 10
    for space, f in (("z_lerp", 4), ("z_slerp", 4), ("w_lerp", 10)):
        for i in range(3):
            df.loc[df["run_id"] == "int1", f"{space}_flip_step_pair{i}"] = f
    flips = stylegan.flips(df)
    assert len(flips) == interp.sum() * 3 * 3
    assert flips["flip_frac"].isna().sum() == 1
    one = flips[flips["run_id"] == "int1"]
    assert set(one["steps"]) == {19} and set(one["flip_frac"].round(4)) == {round(4 / 18, 4), round(10 / 18, 4)}
    row = sg_eval(df).loc["stylegan-z-flips-sooner"]
    assert row["n_pairs"] == 17 and "1 pair left out (no flip in one space)" in row["explanation"]


def test_failed_stylegan_runs_do_not_count_and_kinds_stay_apart():
    df = stylegan_study()
    df.loc[df["kind"] == "stylegan-traverse", "status"] = "error"
    out = sg_eval(df)
    assert out.loc["stylegan-z-flips-sooner", "verdict"] == SUPPORTED
    for claim in SG[1:]:
        assert out.loc[claim, "verdict"] == NOT_ENOUGH and out.loc[claim, "n_pairs"] == 0
        assert "no finished stylegan-traverse runs" in out.loc[claim, "explanation"]
    # DIP and StyleGAN runs in one store: each claim sees only its own kind.
    both = findings.evaluate(pd.concat([study(+1), stylegan_study()], ignore_index=True)).set_index("claim")
    alone = findings.evaluate(study(+1)).set_index("claim")
    pd.testing.assert_series_equal(both.loc[DIP, "verdict"], alone.loc[DIP, "verdict"])
    pd.testing.assert_series_equal(both.loc[DIP, "mean_diff"], alone.loc[DIP, "mean_diff"])
    assert (both.loc[SG, "verdict"] == SUPPORTED).all()
    assert both.loc["stylegan-z-flips-sooner", "filter"] == "kind=stylegan-interpolate"


def test_a_claim_with_no_pairs_says_so_in_words():
    """The walk's Findings page read "only 0 matched pairs (need 3)"."""
    df = study(+1, noise=0.0)
    df = df[(df["loss"] == "l2") & (df["task"] == "denoise")]  # no l1 run: nothing to pair
    row = findings.evaluate(df).set_index("claim").loc["loss-l2-beats-l1"]
    assert row["n_pairs"] == 0 and row["explanation"].startswith("no matched pairs (need 3)"), row["explanation"]
    assert "only 0" not in " ".join(findings.evaluate(df)["explanation"])
