"""The summary of a run that a scheduler stopped early (status `pruned`), from what it logged.

A pruned trial never reaches the task's own summary, but its per-step metrics are stored; a
table that shows `-` for every column of such a run hides what the search learnt from it. This
builds the summary a DIP run would have reported at the step it was stopped: best and final
PSNR/SSIM, the best step, the EMA's best, the hole's PSNR for inpainting, how far it got
(`iterations_done`, `pruned_at`) and its speed. Keys without a per-step source (the corrupted
input's PSNR) stay missing rather than guessed. Pure pandas: the store writer calls it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from priorlab import vocab


def summary_from_metrics(metrics: pd.DataFrame, wall_s: float | None = None) -> dict[str, Any]:
    """`metrics`: one run's `DataFrame[step, name, value]` (as `Store.metrics` returns it)."""
    if metrics.empty:
        return {}
    wide = metrics.pivot_table(index="step", columns="name", values="value", aggfunc="last").sort_index()
    last_step = int(wide.index.max())
    # A DIP run logs psnr exactly when a clean image scores it (tasks/dip/record.py).
    scored = "psnr" in wide.columns and wide["psnr"].notna().any()
    out: dict[str, Any] = {"iterations_done": last_step, "pruned_at": last_step,
                           vocab.REFERENCE: "image" if scored else vocab.NO_REFERENCE}
    last = wide.ffill().iloc[-1]
    for name in ("psnr", "ssim", "loss", "psnr_hole", "psnr_known"):
        if name in wide.columns and wide[name].notna().any():
            out[f"final_{name}"] = float(last[name])
    if "psnr" in wide.columns and wide["psnr"].notna().any():
        best_step = wide["psnr"].idxmax()
        out["best_psnr"] = float(wide.loc[best_step, "psnr"])
        out["best_step"] = int(best_step)
        if "ssim" in wide.columns and pd.notna(wide.loc[best_step, "ssim"]):
            out["ssim_at_best"] = float(wide.loc[best_step, "ssim"])
    for name in ("psnr_ema", "psnr_hole"):
        if name in wide.columns and wide[name].notna().any():
            out[f"best_{name}"] = float(wide[name].max())
    if wall_s is not None and wall_s > 0:
        out["wall_s"] = float(wall_s)
        out["iters_per_s"] = last_step / wall_s
    return out
