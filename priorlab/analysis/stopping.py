"""Early stopping measured: how far each detector's stop lies from the oracle, and what it saves.

Every DIP run carries its detectors' decisions in its summary (see `priorlab.tasks.dip.fit`): per
detector d, `stop_step_<d>` (where d would stop), `stop_psnr_<d>`, `stop_ssim_<d>` and
`stop_gap_<d>` = best_psnr − stop_psnr_<d> (>= 0 dB: what stopping there costs against the
oracle's best step, which needs the clean image). A run that let one detector end it says
so in `stopped_by`, and `iterations_done` says where it ended. Detector names are read from
the columns, never listed here, so a new detector shows up by itself.

- `stop_table(runs, by)`: per detector (and level of a factor), the gap's median, 90th
  percentile and share within `WITHIN_DB` of the oracle, and the stop step as a share of the
  budget (the compute a real stop would save).
- `saved(runs)`: for runs that really stopped (`stopped_by`), iterations done vs budget.
- `stop_steps(runs)`: each run's stop step per detector (the Compare page marks them).
- `split_factors(runs)`: what the table can be split by, `sigma_source` (sigma known or
  estimated, `sigma: auto`) first when both occur.

A run that `stop` ended has no gaps (its oracle stops where it stopped): its stop steps count,
its gaps do not. A run with no clean reference has neither oracle nor gaps.

pandas only: the dashboard imports this.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.vocab import stop_key

WITHIN_DB = 0.5  # a stop this close to the oracle's best PSNR counts as "as good as the oracle"
# A derived split: whether the detectors were told the noise level (`sigma` a number) or
# estimated it from the corrupted image (`sigma: auto`, summary `sigma_est`).
SIGMA_SOURCE = "sigma_source"
TABLE_COLUMNS = ["detector", "n", "median_gap", "p90_gap", "share_within", "mean_stop_frac", "saved"]


def detectors(runs: pd.DataFrame) -> list[str]:
    """Detector names present in `runs` (from `stop_gap_<d>` / `stop_step_<d>` columns)."""
    names = {key[1] for c in runs.columns if (key := vocab.parse_stop_key(c)) and key[0] in ("gap", "step")}
    return sorted(n for n in names if runs.get(stop_key("step", n), pd.Series(dtype=float)).notna().any()
                  or runs.get(stop_key("gap", n), pd.Series(dtype=float)).notna().any())


def _num(runs: pd.DataFrame, col: str) -> pd.Series:
    if col not in runs.columns:
        return pd.Series(np.nan, index=runs.index, dtype=float)
    return pd.to_numeric(runs[col], errors="coerce").astype(float)


def sigma_source(runs: pd.DataFrame) -> pd.Series:
    """Per run: "estimated" when its sigma was `auto`, else "known"."""
    sigma = runs["sigma"] if "sigma" in runs.columns else pd.Series(np.nan, index=runs.index)
    return pd.Series(np.where(sigma.astype(str) == "auto", "estimated", "known"), index=runs.index)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """DIP runs that finished (done); pruned runs never reached their detectors' verdicts."""
    keep = pd.Series(True, index=runs.index)
    if "status" in runs.columns:
        keep &= runs["status"] == vocab.DONE
    if "kind" in runs.columns:
        keep &= runs["kind"] == vocab.DIP
    return runs[keep]


def long_stops(runs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """One row per (finished run, detector): `run_id, detector, stop_step, stop_gap, stop_frac,
    best_step, iterations` (+ the `by` column), where stop_frac = stop_step / iterations."""
    cols = ["run_id", "detector", *([by] if by else []), "stop_step", "stop_gap", "stop_frac", "best_step",
            "iterations"]
    done = _finished(runs)
    parts = []
    iters = _num(done, "iterations")
    for d in detectors(done):
        part = pd.DataFrame({
            "run_id": done["run_id"] if "run_id" in done.columns else done.index.astype(str),
            "detector": d,
            "stop_step": _num(done, stop_key("step", d)),
            "stop_gap": _num(done, stop_key("gap", d)).clip(lower=0),
            "best_step": _num(done, "best_step"),
            "iterations": iters,
        })
        if by:
            part.insert(2, by, sigma_source(done) if by == SIGMA_SOURCE else done[by] if by in done.columns else np.nan)
        part["stop_frac"] = part["stop_step"] / part["iterations"]
        parts.append(part[part["stop_gap"].notna() | part["stop_step"].notna()])
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def stop_table(runs: pd.DataFrame, by: str | None = None, within: float = WITHIN_DB) -> pd.DataFrame:
    """Per detector (and `by` level): `n, median_gap, p90_gap` (dB), `share_within` (runs whose
    gap is <= `within` dB), `mean_stop_frac` (stop step / iterations) and `saved` (1 − it:
    the share of the budget a real stop there would not spend). Sorted by median gap."""
    long = long_stops(runs, by)
    keys = ["detector", *([by] if by else [])]
    if long.empty:
        return pd.DataFrame(columns=[*keys, *TABLE_COLUMNS[1:]])
    g = long.groupby(keys, dropna=False, sort=True)
    table = pd.DataFrame({
        "n": g["stop_gap"].count(),
        "median_gap": g["stop_gap"].median(),
        "p90_gap": g["stop_gap"].quantile(0.9),
        "share_within": g["stop_gap"].apply(lambda x: float((x.dropna() <= within).mean()) if x.notna().any() else np.nan),
        "mean_stop_frac": g["stop_frac"].mean(),
    }).reset_index()
    table["saved"] = 1 - table["mean_stop_frac"]
    return table.sort_values([*([by] if by else []), "median_gap"], kind="stable").reset_index(drop=True)


def saved(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs a detector really ended (`stopped_by`): per detector `n, mean_done_frac`
    (iterations_done / iterations), `saved` (1 − it) and the median gap of those runs."""
    cols = ["stopped_by", "n", "mean_done_frac", "saved", "median_gap"]
    done = _finished(runs)
    if vocab.STOPPED_BY not in done.columns:
        return pd.DataFrame(columns=cols)
    stopped = done[done["stopped_by"].notna() & (done["stopped_by"].astype(str) != "")]
    if stopped.empty:
        return pd.DataFrame(columns=cols)
    frac = _num(stopped, "iterations_done") / _num(stopped, "iterations")
    gap = pd.Series([_num(stopped, stop_key("gap", d)).get(i) for i, d in stopped["stopped_by"].items()],
                    index=stopped.index, dtype=float)
    t = pd.DataFrame({"stopped_by": stopped["stopped_by"].astype(str), "frac": frac, "gap": gap})
    g = t.groupby("stopped_by", sort=True)
    out = pd.DataFrame({"n": g["frac"].size(), "mean_done_frac": g["frac"].mean(), "median_gap": g["gap"].median()})
    out["saved"] = 1 - out["mean_done_frac"]
    return out.reset_index()[cols]


def stop_steps(runs: pd.DataFrame) -> pd.DataFrame:
    """`run_id, detector, stop_step` for every run and detector with a stop step (any status:
    a run's own curve is marked wherever its detectors decided)."""
    rows = []
    for d in detectors(runs):
        s = _num(runs, stop_key("step", d))
        for rid, step in zip(runs["run_id"], s):
            if np.isfinite(step):
                rows.append({"run_id": rid, "detector": d, "stop_step": int(step)})
    return pd.DataFrame(rows, columns=["run_id", "detector", "stop_step"])


def split_factors(runs: pd.DataFrame) -> list[str]:
    """Parameters that vary among the finished DIP runs with detectors (the split choices),
    the usual suspects (arch, noise, sigma) first."""
    done = _finished(runs)
    params = [c for c in runs.attrs.get("param_columns", []) if c in done.columns]
    varying = [c for c in params if done[c].astype(str).nunique(dropna=True) > 1]
    if sigma_source(done).nunique() > 1:
        varying.append(SIGMA_SOURCE)
    first = [c for c in (SIGMA_SOURCE, "arch", "noise", "sigma") if c in varying]
    return first + [c for c in varying if c not in first]
