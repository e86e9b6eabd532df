"""Statistics on hand-made factorial grids with planted effects (no store needed)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from priorlab.analysis import stats

PARAMS = ["arch", "depth", "task", "region", "image", "seed"]
ARCH = {"A": 1.0, "B": 0.0}
DEPTH = {2: 0.5, 4: -0.5}
BASE = 20.0


def grid(noise: float = 0.3, seeds: int = 4, rng_seed: int = 0, arch=ARCH, depth=DEPTH) -> pd.DataFrame:
    """arch × depth × (denoise | inpaint 32 | inpaint 64) × image × seed, additive effects."""
    rng = np.random.default_rng(rng_seed)
    settings = [("denoise", None), ("inpaint", 32), ("inpaint", 64)]
    rows = []
    for a, d, (task, region), image, seed in itertools.product(arch, depth, settings, ["x", "y"], range(seeds)):
        rows.append({"run_id": f"r{len(rows)}", "sweep": "s", "kind": "dip", "status": "done",
                     "arch": a, "depth": d, "task": task, "region": region, "image": image, "seed": seed,
                     "best_psnr": BASE + arch[a] + depth[d] + rng.normal(0, noise),
                     "wall_s": rng.uniform(1, 2)})
    df = pd.DataFrame(rows)
    df.attrs["param_columns"] = list(PARAMS)
    df.attrs["summary_columns"] = ["best_psnr", "wall_s"]
    return df


def cells() -> int:
    return len(DEPTH) * 3 * 2 * 4  # pairs per arch comparison in the default grid


# ---------------------------------------------------------------------------- bootstrap

def test_bootstrap_ci_basics():
    assert all(np.isnan(stats.bootstrap_ci([])))
    mean, lo, hi = stats.bootstrap_ci([3.0])
    assert mean == 3.0 and np.isnan(lo) and np.isnan(hi)
    mean, lo, hi = stats.bootstrap_ci([1.0, 2.0, np.nan, 3.0, 4.0])
    assert mean == 2.5 and lo < mean < hi
    assert stats.bootstrap_ci(range(10), seed=1) == stats.bootstrap_ci(range(10), seed=1)


def test_bootstrap_ci_coverage_is_roughly_nominal():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        _, lo, hi = stats.bootstrap_ci(rng.normal(5.0, 1.0, 40), n_boot=500, seed=int(rng.integers(1 << 30)))
        hits += lo <= 5.0 <= hi
    assert 0.85 <= hits / 200 <= 0.99


def test_bootstrap_large_input_is_chunked():
    x = np.random.default_rng(0).normal(size=5000)
    mean, lo, hi = stats.bootstrap_ci(x, n_boot=1000)
    assert lo < mean < hi and hi - lo < 0.1


# ---------------------------------------------------------------------------- factor effects

def test_factor_effects_recovers_level_means():
    df = grid(noise=0.5, seeds=6)
    eff = stats.factor_effects(df, "best_psnr", "depth")
    assert list(eff.columns) == ["level", "n", "mean", "lo", "hi"]
    assert eff["level"].tolist() == [2, 4] and eff["n"].tolist() == [len(df) // 2] * 2
    for _, row in eff.iterrows():
        true = BASE + np.mean(list(ARCH.values())) + DEPTH[row["level"]]
        assert row["lo"] <= true <= row["hi"]
        assert abs(row["mean"] - true) < 0.2


def test_factor_effects_only_counts_done_runs_and_skips_missing_levels():
    df = grid()
    df.loc[0, ["status", "best_psnr"]] = ["error", 1000.0]
    eff = stats.factor_effects(df, "best_psnr", "region")
    assert eff["level"].tolist() == [32, 64]  # denoise runs have no region
    assert eff["mean"].max() < 30


@pytest.mark.parametrize("df", [pd.DataFrame(), grid().iloc[0:0], grid().assign(best_psnr=np.nan)])
def test_factor_effects_empty(df):
    eff = stats.factor_effects(df, "best_psnr", "arch")
    assert eff.empty and list(eff.columns) == ["level", "n", "mean", "lo", "hi"]


def test_factor_effects_single_level():
    eff = stats.factor_effects(grid().query("arch == 'A'"), "best_psnr", "arch")
    assert len(eff) == 1 and eff["lo"].iloc[0] < eff["mean"].iloc[0] < eff["hi"].iloc[0]


# ---------------------------------------------------------------------------- paired

def test_paired_finds_planted_difference():
    r = stats.paired(grid(), "best_psnr", "arch", "A", "B")
    assert r.n_pairs == cells() and r.unmatched == 0
    assert r.lo <= 1.0 <= r.hi and abs(r.mean_diff - 1.0) < 0.15
    assert r.win_rate > 0.95 and r.p_value < 1e-6
    assert set(r.matched_on) == {"depth", "task", "region", "image", "seed"}
    assert r.ignored == {}
    assert {"run_id_a", "run_id_b", "value_a", "value_b", "diff", "n_a", "n_b"} <= set(r.pairs.columns)
    assert np.allclose(r.pairs["diff"], r.pairs["value_a"] - r.pairs["value_b"])


def test_paired_lower_is_better_flips_wins_not_sign():
    r = stats.paired(grid(), "best_psnr", "arch", "A", "B", higher_is_better=False)
    assert r.mean_diff > 0.8 and r.win_rate < 0.05


def test_paired_excludes_unmatched_runs():
    df = grid()
    drop = df.index[(df["arch"] == "B") & (df["seed"] == 0)]
    extra = df.iloc[[0]].assign(run_id="lonely", seed=99)
    df = pd.concat([df.drop(drop), extra])
    df.attrs["param_columns"] = list(PARAMS)
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert r.n_pairs == cells() * 3 // 4
    assert r.unmatched == len(drop) + 1  # A's seed-0 runs and the lonely one
    assert "lonely" not in set(r.pairs["run_id_a"])


def test_paired_matches_missing_region():
    r = stats.paired(grid(), "best_psnr", "arch", "A", "B")
    assert r.pairs["region"].isna().sum() == cells() // 3
    assert (r.pairs["task"][r.pairs["region"].isna()] == "denoise").all()


def test_paired_region_comparison_matches_within_inpainting():
    df = grid()
    df["region"] = df["region"].astype(object).where(df["region"].notna(), None)  # None, as from JSON
    r = stats.paired(df, "best_psnr", "region", 32, 64)
    assert r.n_pairs == len(ARCH) * len(DEPTH) * 2 * 4 and abs(r.mean_diff) < 0.3


def test_paired_ignores_parameters_that_follow_the_factor():
    df = grid().query("task == 'denoise'").copy()
    df["iterations"] = np.where(df["depth"] == 2, 1000, 1500)
    df["snapshots"] = [[500, 1000] if it == 1000 else [750, 1500] for it in df["iterations"]]
    df["method"] = None
    df.loc[df["arch"] == "B", "method"] = "nlm"  # applies to B only
    df.attrs["param_columns"] = PARAMS + ["iterations", "snapshots", "method"]
    r = stats.paired(df, "best_psnr", "iterations", 1000, 1500)
    assert r.ignored == {"snapshots": "follows the factor", "depth": "follows the factor"}
    assert r.n_pairs == len(df) // 2 and r.mean_diff == pytest.approx(1.0, abs=0.2)
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert r.ignored == {"method": "applies to one level only"} and r.n_pairs == len(df) // 2


def test_paired_averages_repeats_within_a_cell():
    df = grid()
    df = pd.concat([df, df[df["arch"] == "A"].assign(run_id=lambda x: x["run_id"] + "-again")])
    df.attrs["param_columns"] = list(PARAMS)
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert r.n_pairs == cells() and (r.pairs["n_a"] == 2).all() and (r.pairs["n_b"] == 1).all()


def test_paired_ignores_bookkeeping_and_unfinished_runs():
    df = grid()
    df["sweep"] = np.where(df["seed"] % 2, "s1", "s2")
    df.loc[df.index[:3], ["status", "best_psnr"]] = ["error", -50.0]
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert "sweep" not in r.matched_on and "wall_s" not in r.matched_on
    assert r.n_pairs == cells() - 3 and r.mean_diff < 1.2


def test_paired_without_attrs_guesses_parameters():
    df = grid()
    df.attrs = {}
    df["final_psnr"] = df["best_psnr"] - 1
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert set(r.matched_on) == {"depth", "task", "region", "image", "seed"}
    assert r.n_pairs == cells()


def test_paired_levels_given_as_text():
    r = stats.paired(grid(), "best_psnr", "depth", "2", "4")
    assert r.n_pairs == len(ARCH) * 3 * 2 * 4 and r.mean_diff == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("df,args", [
    (pd.DataFrame(), ("arch", "A", "B")),
    (grid(), ("arch", "A", "C")),
    (grid(), ("nope", "A", "B")),
    (grid().iloc[:1], ("arch", "A", "B")),
    (grid(), ("arch", "A", "A")),
])
def test_paired_not_enough_data_never_raises(df, args):
    r = stats.paired(df, "best_psnr", *args)
    assert r.p_value is None and r.n_pairs == 0 and isinstance(r.pairs, pd.DataFrame)


def test_paired_single_pair_has_no_p_value():
    df = grid().query("seed == 0 and depth == 2 and task == 'denoise' and image == 'x'")
    r = stats.paired(df, "best_psnr", "arch", "A", "B")
    assert r.n_pairs == 1 and r.p_value is None and np.isnan(r.lo) and r.win_rate == 1.0


def test_wilcoxon_p_edge_cases():
    assert stats.wilcoxon_p([]) is None
    assert stats.wilcoxon_p([1.0]) is None
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) is None
    assert stats.wilcoxon_p(np.arange(1, 11)) < 0.01
    assert stats.wilcoxon_p([1.0, 1.0, 2.0, 2.0, 3.0, 0.0, -1.0]) < 0.2  # ties: normal approximation


# ---------------------------------------------------------------------------- interaction, leaderboard

def test_interaction_pivot():
    df = grid(noise=0.0)
    table = stats.interaction(df, "best_psnr", "arch", "depth")
    assert table.shape == (2, 2) and table.index.tolist() == ["A", "B"] and table.columns.tolist() == [2, 4]
    assert table.loc["A", 2] == pytest.approx(BASE + 1.5) and table.loc["B", 4] == pytest.approx(BASE - 0.5)
    counts = stats.interaction(df, "best_psnr", "task", "region", stat="n")
    assert counts.loc["inpaint", 32] == len(df) // 3 and counts.loc["inpaint", 64] == len(df) // 3
    assert counts.shape == (1, 2)  # denoising runs have no region: no row, no NaN column
    counts = stats.interaction(df.query("region != 64"), "best_psnr", "arch", "region", stat="n")
    assert counts.loc["A", 32] == len(df) // 6
    assert stats.interaction(pd.DataFrame(), "best_psnr", "arch", "depth").empty
    with pytest.raises(ValueError):
        stats.interaction(df, "best_psnr", "arch", "depth", stat="mode")


def test_leaderboard_order():
    df = grid()
    board = stats.leaderboard(df, "best_psnr", ["arch", "depth"])
    assert list(board.columns) == ["rank", "arch", "depth", "n", "mean", "lo", "hi"]
    assert list(zip(board["arch"], board["depth"])) == [("A", 2), ("A", 4), ("B", 2), ("B", 4)]
    assert board["rank"].tolist() == [1, 2, 3, 4] and (board["n"] == len(df) // 4).all()
    worst_first = stats.leaderboard(df, "best_psnr", "arch", higher_is_better=False)
    assert worst_first["arch"].tolist() == ["B", "A"]
    by_region = stats.leaderboard(df, "best_psnr", ["region"])
    assert len(by_region) == 3 and by_region["region"].isna().sum() == 1
    assert stats.leaderboard(pd.DataFrame(), "best_psnr", ["arch"]).empty


# ---------------------------------------------------------------------------- speed

def test_speed_on_10k_runs():
    """Printed, not asserted: the machine is shared."""
    rng = np.random.default_rng(0)
    n = 10_000
    df = pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)], "kind": "dip", "status": "done",
        "arch": rng.choice(["seed-double", "seed-single", "skip"], n), "depth": rng.choice([2, 3, 4], n),
        "loss": rng.choice(["l1", "l2", "kl"], n), "image": rng.choice(list("abcde"), n),
        "seed": rng.integers(0, 20, n), "best_psnr": rng.normal(25, 2, n)})
    df.attrs["param_columns"] = ["arch", "depth", "loss", "image", "seed"]
    stats.paired(df.iloc[:50], "best_psnr", "arch", "seed-double", "seed-single")  # scipy import
    for label, fn in [
        ("paired", lambda: stats.paired(df, "best_psnr", "arch", "seed-double", "seed-single")),
        ("factor_effects", lambda: stats.factor_effects(df, "best_psnr", "depth")),
        ("interaction", lambda: stats.interaction(df, "best_psnr", "arch", "loss")),
        ("leaderboard", lambda: stats.leaderboard(df, "best_psnr", ["arch", "depth", "loss"])),
    ]:
        t = time.perf_counter()
        fn()
        print(f"{label} on {n} runs: {(time.perf_counter() - t) * 1e3:.0f} ms")
