"""The command line's tables over the store: `priorlab runs` and the sweep's best settings.

Every number keeps its significant digits (a learning rate of 1e-4 reads `0.0001`, never
`0.00`); a column appears only when it tells runs apart: a parameter that varies among the
runs of one kind (a parameter another kind lacks is no reason), a dict parameter (a StyleGAN
classifier spec) split into the sub-keys that vary. The best-settings table ranks a setting
within the conditions it was run on (image, noise level, hole, seed): "best" is the setting
that beats the others on the same images, not the one that happened to get the easiest image.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from priorlab import vocab

# Summary metrics worth a column in the terminal table (CSV/parquet keep every column).
KEY_METRICS = ("best_psnr", "best_step", "final_psnr", "input_psnr", "ssim_at_best", *vocab.RESOURCE_KEYS, "pruned_at",
               *(vocab.space_key(s, "val_accuracy") for s in vocab.LATENT_SPACES),
               *(vocab.space_key(s, "flip_rate") for s in (vocab.Z_INTERP[0], vocab.W_INTERP)))
MAX_CELL = 28  # characters of one cell; longer values end in "…"
# Parameters that say which data a run was given, not how it was fitted: settings are ranked within them.
CONDITIONS = ("image", "corrupted", "noise", "sigma", "region", "region_place", "mask", "seed")


def num_text(v: float | int) -> str:
    """A number with four significant digits; integers (also 64.0) as integers."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if v != v:
        return "-"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def cell(v: Any) -> str:
    """How a value reads in a terminal table: numbers by `num_text`, a,b for lists, - for none."""
    if isinstance(v, list):
        text = ",".join(cell(x) for x in v)
    elif isinstance(v, dict):
        text = ",".join(f"{k}={cell(x)}" for k, x in v.items())
    elif v is None or (isinstance(v, float) and v != v):
        return "-"
    elif isinstance(v, (int, float)):
        return num_text(v)
    else:
        text = str(v)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _flat(runs: pd.DataFrame, col: str) -> dict[str, pd.Series]:
    """A dict-valued parameter as one column per sub-key (`classifier.source`), else itself."""
    values = runs[col]
    if not values.map(lambda v: isinstance(v, dict)).any():
        return {col: values}
    keys = list(dict.fromkeys(k for v in values if isinstance(v, dict) for k in v))
    return {f"{col}.{k}": values.map(lambda v, k=k: v.get(k) if isinstance(v, dict) else None) for k in keys}


def shown_params(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """The parameter columns (dicts split by sub-key) whose value differs among the runs of one kind."""
    out: dict[str, pd.Series] = {}
    for col in runs.attrs.get("param_columns", []):
        for name, series in _flat(runs, col).items():
            cells = series.map(cell)
            varies = any(cells[idx][series[idx].map(lambda v: cell(v) != "-")].nunique() > 1
                         for idx in runs.groupby("kind", sort=False).groups.values())
            if varies:
                out[name] = cells
    return out


def runs_table(runs: pd.DataFrame) -> str:
    """A terminal-width view of `Store.runs()`: short ids, minutes-resolution times, no node or
    error text, only the parameters that tell runs apart, plus key metrics. A single run is
    shown with its parameters listed below (nothing tells it apart from anything)."""
    if runs.empty:
        return "(no runs)"
    view = pd.DataFrame({"run": runs["run_id"].str[:8]})
    for col in ("sweep", "kind"):
        if runs[col].nunique(dropna=False) > 1:
            view[col] = runs[col]
    view["status"] = runs["status"]
    view["finished"] = runs["finished_at"].dt.strftime("%Y-%m-%d %H:%M")
    for name, cells in shown_params(runs).items():
        view[name] = cells
    for col in KEY_METRICS:
        if col in runs.columns and runs[col].notna().any():
            view[col] = runs[col].map(cell)
    text = view.astype(object).fillna("-").to_string(index=False)
    if len(runs) == 1:
        run = runs.iloc[0]
        given = [(c, run[c]) for c in runs.attrs.get("param_columns", []) if cell(run[c]) != "-"]
        text += "\nparameters: " + " ".join(f"{c}={cell(v)}" for c, v in given)
    return text


def export_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` for CSV: whole-number columns as integers (a size of 64 is `64`, not `64.0`; pandas
    turns an int column with gaps into floats)."""
    out = runs.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_float_dtype(s) and s.notna().any():
            vals = s.dropna()
            if (vals == vals.round()).all() and vals.abs().max() < 2**53:
                out[col] = s.astype("Int64")
    return out


# ---------------------------------------------------------------- the end of a sweep

# What the end-of-sweep summary shows per StyleGAN kind (see tasks/stylegan/jobs/*.py): summary
# keys by name, or "*_<suffix>" for one column per latent space / path (z, w, z_lerp, w_lerp, ...).
STYLEGAN_SUMMARY = {
    "stylegan-direction": ("*_val_accuracy",),  # SVM accuracy of the attribute per latent space
    "stylegan-interpolate": ("*_flip_step_mean",),  # the frame where the label flips, per path
    "stylegan-sample": ("n", *(vocab.space_key(s, k) for k in ("diversity", "prob_mean") for s in vocab.LATENT_SPACES)),
    "stylegan-traverse": ("*_prob_delta", "*_ssim_at_max"),  # attribute change, identity at +-alpha
}


def stylegan_columns(runs: pd.DataFrame, kind: str) -> list[str]:
    cols = []
    for key in STYLEGAN_SUMMARY.get(kind, ()):
        if key.startswith("*_"):
            cols += [c for c in runs.columns if c.endswith(key[1:]) and not c.startswith("direction_")]
        elif key in runs.columns:
            cols.append(key)
    return [c for c in dict.fromkeys(cols) if runs[c].notna().any()]


def _searched(runs: pd.DataFrame, params: list[str]) -> list[str]:
    """Parameters with more than one value among these runs (all-empty ones dropped)."""
    return [c for c in params if runs[c].notna().any() and runs[c].map(cell).nunique() > 1]


def _ranked(group: pd.DataFrame, searched: list[str], metric: str, top: int) -> tuple[pd.DataFrame, str]:
    """The best `top` settings of `group` and how they were ranked. With conditions (images,
    noise levels, ...) among the searched parameters, a setting's score is its mean lead over
    the other settings run on the same condition (`vs_same_data`, in the metric's units)."""
    conds = [c for c in searched if c in CONDITIONS]
    setting = [c for c in searched if c not in conds]
    ok = group[group[metric].notna()]
    if not conds or not setting:
        return ok.sort_values(metric, ascending=False).head(top), f"by {metric}"
    keyed = ok.assign(**{c: ok[c].map(cell) for c in searched})
    lead = keyed[metric] - keyed.groupby(conds, dropna=False)[metric].transform("mean")
    table = (keyed.assign(vs_same_data=lead)
             .groupby(setting, dropna=False, sort=False)
             .agg(vs_same_data=("vs_same_data", "mean"), **{metric: (metric, "mean")}, n=(metric, "size"))
             .reset_index().sort_values("vs_same_data", ascending=False).head(top))
    how = (f"by {metric} against the other settings on the same {', '.join(conds)} "
           f"(vs_same_data: mean lead in {metric}; {metric}: mean over n runs)")
    return table, how


def best_table(store, sweep: str, metric: str = "best_psnr", top: int = 5) -> str:
    """The best settings of a sweep, for the end of a run: one small table per kind and task,
    showing every parameter the sweep searched (also when the scheduler pruned all but one run)
    and the runs' own numbers; StyleGAN kinds show their own results."""
    runs = store.runs(sweep=sweep, status=list(vocab.SCORED))
    if runs.empty:
        return ""
    params = runs.attrs.get("param_columns", [])
    parts = []
    for kind, of_kind in runs.groupby("kind", sort=True):
        searched_kind = _searched(of_kind, params)
        tasks = of_kind.groupby("task", dropna=False) if "task" in of_kind.columns and of_kind["task"].notna().any() \
            else [(None, of_kind)]
        for task, group in tasks:
            title = kind if task is None or task != task else f"{kind} {task}"
            # What the search varied for this kind, as far as this task's runs have it.
            searched = [c for c in searched_kind if c in _searched(group, params)]
            done = group[group["status"] == vocab.DONE]
            pruned = int((group["status"] == vocab.PRUNED).sum())
            if metric in group.columns and group[metric].notna().any():
                best, how = _ranked(group, searched, metric, top)
                if "vs_same_data" in best.columns:
                    shown = list(best.columns)
                else:
                    extra = [c for c in ("input_psnr", "pruned_at") if c in best.columns and best[c].notna().any()]
                    shown = [*searched, metric, *extra]
                    if pruned:
                        shown.insert(len(searched), "status")
                note = f", {pruned} pruned (their {metric} is where they were stopped)" if pruned else ""
                head = f"{title}: best {len(best)} of {len(group)} {how}{note}"
            elif kind in STYLEGAN_SUMMARY and not done.empty:
                best = done.head(top)
                shown = [*searched, *stylegan_columns(done, kind)]
                head = f"{title}: {len(done)} run{'s' if len(done) != 1 else ''}"
            else:
                continue
            if not shown:
                continue
            table = best[shown].map(cell).to_string(index=False)
            parts.append(head + "\n" + "\n".join("  " + line for line in table.splitlines()))
    return "\n".join(parts)
