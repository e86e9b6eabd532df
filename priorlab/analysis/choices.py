"""What the Analysis page starts from: a metric and a factor worth looking at per kind, the
per-run early-stopping metrics, and continuous parameters binned into a few ordered levels.

Pure pandas (no Streamlit): the dashboard renders these, tests call them directly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from priorlab import vocab
from priorlab.analysis import stopping

# Per kind: the summary keys a new user most likely wants first, best first.
DEFAULT_METRICS = {
    vocab.DIP: ["best_psnr", "final_psnr"],
    vocab.DIP_BASELINE: ["best_psnr", "final_psnr"],
    vocab.SG_DIRECTION: [vocab.space_key(s, "val_accuracy") for s in vocab.LATENT_SPACES],
    vocab.SG_INTERPOLATE: [vocab.space_key(s, k) for k in ("flip_frac_mean", "flip_step_mean", "flip_rate")
                           for s in vocab.INTERP_SPACES],
    vocab.SG_SAMPLE: [vocab.space_key(s, "diversity") for s in vocab.LATENT_SPACES],
    vocab.SG_TRAVERSE: [vocab.space_key(s, k) for k in ("prob_delta", "ssim_at_max") for s in vocab.LATENT_SPACES],
}
REPLICATE = "seed"  # a factor only worth comparing when nothing else varies
STOP_METRICS = ("stop_step", "stop_gap")  # per run: the median over its early-stopping detectors
MAX_LEVELS = 8  # a numeric parameter with more distinct values is binned


def default_metric(kind: str, metrics: list[str]) -> str | None:
    """The kind's first preferred metric present in `metrics`, else the first of them."""
    return next((m for m in DEFAULT_METRICS.get(kind, []) if m in metrics), metrics[0] if metrics else None)


def default_factor(factors: list[str]) -> str | None:
    """`arch` when it varies, else the first varying factor that is not the seed (the seed only
    when nothing else varies)."""
    if "arch" in factors:
        return "arch"
    return next((f for f in factors if f != REPLICATE), factors[0] if factors else None)


def with_stop_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `stop_step` and `stop_gap` per run: the median over the run's detectors of
    `stop_step_<d>` / `stop_gap_<d>` (where the run would stop without its clean image, and the
    PSNR given up there), added to the summary columns so they can be chosen as a metric."""
    dets = stopping.detectors(runs)
    if not dets:
        return runs
    out = runs.copy()
    for name, field in zip(STOP_METRICS, ("step", "gap")):
        cols = [vocab.stop_key(field, d) for d in dets if vocab.stop_key(field, d) in out.columns]
        if cols:
            values = out[cols].apply(pd.to_numeric, errors="coerce")
            out[name] = values.median(axis=1, skipna=True)
    added = [m for m in STOP_METRICS if m in out.columns and m not in runs.columns]
    out.attrs = {**runs.attrs, "summary_columns": [*runs.attrs.get("summary_columns", []), *added]}
    return out


class Bin(str):
    """A binned level: shown as its text (`0.001–0.0013`), ordered by its lower edge."""

    lo: float

    def __new__(cls, text: str, lo: float):
        obj = super().__new__(cls, text)
        obj.lo = lo
        return obj

    def __reduce__(self):
        return Bin, (str(self), self.lo)

    def __lt__(self, other):
        return self.lo < other.lo if isinstance(other, Bin) else str.__lt__(self, other)

    def __gt__(self, other):
        return self.lo > other.lo if isinstance(other, Bin) else str.__gt__(self, other)

    __hash__ = str.__hash__


def _sig(x: float) -> str:
    return f"{x:.3g}"


def bin_numeric(values: pd.Series, max_levels: int = MAX_LEVELS) -> pd.Series | None:
    """`values` in at most `max_levels` bins (log-spaced when they span a factor of 10 or more
    and are positive, otherwise quantiles), each labelled with the lowest and highest value it
    holds at three significant digits; None when the column is not a continuous number (text,
    integers only, or few distinct values). Missing values stay missing."""
    if pd.api.types.is_bool_dtype(values):
        return None
    x = pd.to_numeric(values, errors="coerce")
    if x.isna().ne(values.isna()).any():  # some value is not a number
        return None
    v = x.dropna()
    if v.nunique() <= max_levels or (v == np.round(v)).all():
        return None
    if (v > 0).all() and v.max() / v.min() >= 10:
        edges = np.logspace(math.log10(v.min()), math.log10(v.max()), max_levels + 1)
        edges[0], edges[-1] = v.min(), v.max()  # exactly: 10**log10(x) can miss x by a rounding error
        codes = pd.cut(x, edges, include_lowest=True, labels=False, duplicates="drop")
    else:
        codes = pd.qcut(x, max_levels, labels=False, duplicates="drop")
    labels = {}
    for code, part in x.groupby(codes):
        lo, hi = float(part.min()), float(part.max())
        labels[code] = Bin(_sig(lo) if _sig(lo) == _sig(hi) else f"{_sig(lo)}–{_sig(hi)}", lo)
    # Built as a list: Series.map would turn the Bins into plain strings (and lose their order).
    return pd.Series([labels.get(c) if pd.notna(c) else None for c in codes], index=values.index, dtype=object)


def binned(runs: pd.DataFrame, columns: list[str], max_levels: int = MAX_LEVELS) -> tuple[pd.DataFrame, list[str]]:
    """`runs` with every continuous one of `columns` binned (`bin_numeric`), and which were."""
    out, done = runs, []
    for c in columns:
        b = bin_numeric(runs[c], max_levels) if c in runs.columns else None
        if b is not None:
            if out is runs:
                out = runs.copy()
            out[c] = b
            done.append(c)
    return out, done
