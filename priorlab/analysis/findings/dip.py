"""The seed report's Deep Image Prior claims: depth, noise, loss, hole size, architecture, iterations.

Most are matched comparisons of two levels of one factor (the engine's default check); the
two about iteration budgets have their own evaluators.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis import stopping
from priorlab.analysis.findings.claims import (
    NOT_ENOUGH, Claim, assess, claim_row, evaluate_paired, explain, fmt_value, from_diffs, make_row, resolve_metric,
)
from priorlab.analysis.stats import usable

SEED_ARCHS = ("seed-double", "seed-single")  # the report's architectures 1 and 2
REPORT_BUDGETS = (1000, 1500)  # the report's two iteration budgets (Figure 14)


def _more_iterations(claim: Claim, runs: pd.DataFrame) -> dict:
    """The report compares 1000 with 1500 iterations; any two budgets answer "do more help",
    so the most and fewest iterations in the store are compared."""
    metric = resolve_metric(claim, runs)
    levels = sorted(pd.unique(usable(runs, metric).get("iterations", pd.Series(dtype=float)).dropna()))
    if len(levels) < 2:
        found = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in levels) or "none"  # 300, not 300.0
        return make_row(claim, metric, explanation=(
            f"needs runs at two or more iteration budgets; found {found} among the selected runs"))
    return evaluate_paired(dataclasses.replace(claim, better=levels[-1], worse=levels[0]), runs)


def _stop_after_1000(claim: Claim, runs: pd.DataFrame) -> dict:
    """Where the runs should have stopped, against the report's shorter budget: per finished
    run that ran past 1000 iterations, the median of its detectors' stop steps minus 1000
    (the oracle's best_step when no detector was attached). Positive = the best stop lies
    past 1000, so 1500 iterations can help; negative = stop before 1000, longer only overfits."""
    short = REPORT_BUDGETS[0]
    metric = "stop_step"
    comparison = f"stop step − {short} per run (detectors' median; positive = stop after {short})"
    done = runs[runs["status"] == vocab.DONE] if "status" in runs.columns else runs
    iters = pd.to_numeric(done.get("iterations", pd.Series(np.nan, index=done.index)), errors="coerce")
    long_runs = done[(iters > short).to_numpy()]
    if long_runs.empty:
        found = ", ".join(str(int(v)) for v in sorted(iters.dropna().unique())) or "none"
        r = from_diffs("stop step", f"after {short}", f"before {short}", metric, [], True)
        return claim_row(claim, metric, r, NOT_ENOUGH, f"needs finished runs with more than {short} iterations to see past "
                    f"{short} (the report ran {REPORT_BUDGETS[1]}); found budgets {found}", comparison)
    stops = stopping.long_stops(long_runs)
    best = pd.to_numeric(long_runs.get("best_step", pd.Series(np.nan, index=long_runs.index)), errors="coerce")
    if stops.empty:
        per_run = pd.Series(best.to_numpy(), index=long_runs["run_id"]).dropna()
        source = "the oracle's best_step (no detector attached)"
    else:
        per_run = stops.dropna(subset=["stop_step"]).groupby("run_id")["stop_step"].median()
        source = "the detectors' median stop step"
    pairs = per_run.rename("stop_step").reset_index()
    pairs["diff"] = pairs["stop_step"] - short
    r = from_diffs("stop step", f"after {short}", f"before {short}", metric, pairs["diff"], True, pairs)
    parts = [f"oracle best_step median {fmt_value(float(best.median()), '.0f')} "
             f"(before {short} in {int((best < short).sum())} of {int(best.notna().sum())} runs)"]
    for d, g in stops.groupby("detector", sort=True):
        s = g["stop_step"].dropna()
        parts.append(f"{d} median {fmt_value(float(s.median()), '.0f')} ({int((s < short).sum())} of {len(s)} before {short})")
    seen = f"{source} against {short}: " + "; ".join(parts)
    j = assess(r)
    why = explain(r, j, seen, f"the best stop lies past {short}, so {REPORT_BUDGETS[1]} iterations can help",
                  f"the runs should stop before {short}, the opposite of the claim: past it they fit the noise, "
                  f"so {REPORT_BUDGETS[1]} iterations cannot help")
    return claim_row(claim, metric, r, j.verdict, why, comparison)


DIP_CLAIMS: list[Claim] = [
    Claim("depth2-sharper-denoise",
          "Denoising: depth 2 gives the sharpest images; at depth 4 they are blurrier, for both "
          "architectures and both noise levels (\"depth level seemingly impacts the clarity and "
          "sharpness of the image\").",
          "SSIM at the best-PSNR step: SSIM weighs local structure and contrast, which blur "
          "destroys, more than PSNR's squared error does. Seed architectures only.",
          factor="depth", better=2, worse=4, metric=("ssim_at_best", "best_ssim"),
          filter={"task": "denoise", "arch": list(SEED_ARCHS)}),
    Claim("depth2-sharper-inpaint",
          "Inpainting: \"Increasing the depth level resulted in more artifacts found in output "
          "images\"; depth 2 beats depth 4.",
          "SSIM at the best-PSNR step (as for denoising). Seed architectures only.",
          factor="depth", better=2, worse=4, metric=("ssim_at_best", "best_ssim"),
          filter={"task": "inpaint", "arch": list(SEED_ARCHS)}),
    Claim("sigma-0.5-worse",
          "\"When sigma=0.5, more image artifacts were found in the training results than when "
          "sigma=0.1.\"",
          "Best output PSNR against the clean image is lower at sigma 0.5 than at 0.1. This "
          "confirms the harder problem gives a worse result; it does not isolate artifacts.",
          factor="sigma", better=0.1, worse=0.5, metric="best_psnr", filter={"task": "denoise"}),
    Claim("loss-l2-beats-l1",
          "\"The best results, although blurry, were produced when L2 loss was used. L1 loss "
          "produced good results yet had additional artifacts.\"",
          "Best output PSNR, L2 vs L1 on matched runs (first half of the ordering L2 > L1 > KL).",
          factor="loss", better="l2", worse="l1", metric="best_psnr"),
    Claim("loss-l1-beats-kl",
          "\"The KL divergence performed poorly in comparison, only able to produce global "
          "features\"; L1 beats KL.",
          "Best output PSNR, L1 vs KL on matched runs (second half of the ordering L2 > L1 > KL).",
          factor="loss", better="l1", worse="kl", metric="best_psnr"),
    Claim("region-64-worse",
          "\"When the region size was set to 64x64 more artifacts were found in the output images "
          "than when the region size was set to 32x32.\"",
          "Best PSNR inside the hole (whole-image PSNR if hole PSNR was not recorded): a bigger "
          "hole lowers whole-image PSNR by its area alone, the hole PSNR asks how well it is filled.",
          factor="region", better=32, worse=64, metric=("best_psnr_hole", "best_psnr"),
          filter={"task": "inpaint"}),
    Claim("arch1-better-denoise",
          "\"The [first] CNN architecture performed better than the second ... There was "
          "noticeably more artifacts when less convolutional blocks were applied.\" (denoising)",
          "Best output PSNR, seed-double (architecture 1) vs seed-single (architecture 2) on "
          "denoising. The exact opposite of arch2-fewer-artifacts-denoise: at most one is supported.",
          factor="arch", better="seed-double", worse="seed-single", metric="best_psnr",
          filter={"task": "denoise"}),
    Claim("arch2-fewer-artifacts-denoise",
          "\"I noticed architecture two produced fewer artifacts than architecture one but "
          "results are inconclusive.\" (the denoising section)",
          "Best output PSNR, seed-single vs seed-double on denoising; contradicts "
          "arch1-better-denoise.",
          factor="arch", better="seed-single", worse="seed-double", metric="best_psnr",
          filter={"task": "denoise"}),
    Claim("arch1-better-inpaint",
          "Architecture 1 (two convolutions per level) performs better than architecture 2 "
          "(one), inpainting.",
          "Best PSNR inside the hole (whole-image PSNR if absent), seed-double vs seed-single.",
          factor="arch", better="seed-double", worse="seed-single",
          metric=("best_psnr_hole", "best_psnr"), filter={"task": "inpaint"}),
    Claim("more-iterations-help-sigma-0.5",
          "At noise 0.5, 1500 iterations improve on the 1000-iteration results (Figure 14).",
          "Final output PSNR at sigma 0.5, most vs fewest iterations in the store: the final "
          "(not best) PSNR, since the best over a longer run can only be as good or better.",
          factor="iterations", metric="final_psnr", filter={"sigma": 0.5},
          evaluator=_more_iterations),
    Claim("iterations-stop-after-1000",
          "At noise 0.5, 1500 iterations improve on the 1000-iteration results (Figure 14), i.e. the "
          "best stopping point lies past 1000 iterations.",
          "Where each run should stop, from what a user has: the early-stopping detectors' stop "
          "steps (median over the run's detectors; the oracle best_step, which needs the clean "
          "image, is shown beside them and used when no detector ran), minus 1000, over finished "
          "runs at sigma 0.5 that ran past 1000 iterations. Positive supports the claim.",
          factor="iterations", metric="stop_step", filter={"sigma": 0.5}, evaluator=_stop_after_1000),
]
