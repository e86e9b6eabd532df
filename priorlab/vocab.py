"""The results vocabulary: every name a run leaves in the store, spelled once.

Standard library only, so every layer may import it (tasks, analysis, cluster, dashboard):
run statuses and their classes, `run_id`, the database file name, the run columns, the kind
names, and per kind the builders (tasks write names with them) and parsers (analysis and the
dashboard read names with them) of summary keys, metric names and artifact names. Renaming a
key here renames it for the writer and every reader at once; `tests/test_vocab.py` fails when
a status tuple, a StyleGAN key pattern, a run-column list or the database name is spelled
anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# ---------------------------------------------------------------------------- the store

DB_NAME = "priorlab.db"
RUN_COLUMNS = ("run_id", "sweep", "kind", "status", "error", "node", "attempts",
               "created_at", "started_at", "finished_at")
# `Store.runs()` is one wide frame: a summary key whose name a run column or a parameter already
# took (stylegan-interpolate's `steps`) gets this prefix; read through `analysis.runframe`.
SUMMARY_PREFIX = "summary_"
PARAM_PREFIX = "param_"  # likewise a parameter named like a run column
SWEEP_SEP = ","  # `Store.runs()`: the sweeps a run belongs to, joined
INPUT_SHA256 = "input_sha256"  # summary: JSON {field: sha256} of the input files a run read (cluster/inputs.py)


def run_id(kind: str, params: dict[str, Any]) -> str:
    """Deterministic id of one run: the same kind and parameters always give the same id."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- resource use

# Summary keys of what a run cost (every kind; tasks/resources.py measures them). iters_per_s
# only where a run has iterations (DIP); peak_gpu_mb only where the run used CUDA.
WALL_S, ITERS_PER_S = "wall_s", "iters_per_s"
PEAK_RSS_MB, PEAK_GPU_MB = "peak_rss_mb", "peak_gpu_mb"
RESOURCE_KEYS = (WALL_S, ITERS_PER_S, PEAK_RSS_MB, PEAK_GPU_MB)

# ---------------------------------------------------------------------------- run statuses

PENDING, RUNNING, DONE, ERROR = "pending", "running", "done", "error"
INTERRUPTED, DIVERGED = "interrupted", "diverged"
PRUNED = "pruned"  # schema v2: a run a scheduler (ASHA) stopped early; a result, not an error
STATUSES_V1 = (PENDING, RUNNING, DONE, ERROR, INTERRUPTED, DIVERGED)
STATUSES = (*STATUSES_V1, PRUNED)

WAITING = (PENDING, RUNNING)  # not ended yet
ENDED = tuple(s for s in STATUSES if s not in WAITING)
COMPLETED = (DONE, DIVERGED)  # the task returned its summary: every row of the run is stored
# A resumed sweep keeps these (reruns them only with --force). A diverged run is one: the same
# parameters and seed diverge again, so a rerun would only spend the time again (issue 16).
RESULTS = (DONE, PRUNED, DIVERGED)
RERUN = tuple(s for s in STATUSES if s not in RESULTS)  # a resumed sweep runs these again
UNFINISHED = (RUNNING, INTERRUPTED)  # a stopped or killed session's: an Optuna resume reruns these first
SPENT = (DONE, PRUNED, DIVERGED)  # stored runs that count toward a search's num_samples
FINAL = (DONE, ERROR, DIVERGED, PRUNED)  # a trial that ended on its own within its sweep
FAILED = (ERROR, INTERRUPTED, DIVERGED)  # ended without a result; the dashboards list these
SCORED = (DONE, PRUNED)  # summaries that rank a search: a pruned run carries what it ran until stopped

# ---------------------------------------------------------------------------- kinds

DIP, DIP_BASELINE = "dip", "dip-baseline"
SG_SAMPLE, SG_INTERPOLATE = "stylegan-sample", "stylegan-interpolate"
SG_DIRECTION, SG_TRAVERSE = "stylegan-direction", "stylegan-traverse"
DIP_KINDS = (DIP, DIP_BASELINE)
STYLEGAN_KINDS = (SG_SAMPLE, SG_INTERPOLATE, SG_DIRECTION, SG_TRAVERSE)
KIND_NAMES = (*DIP_KINDS, *STYLEGAN_KINDS)

# ---------------------------------------------------------------------------- DIP names

# Artifacts: clean, corrupted (and mask when inpainting) at step 0, output at logging steps.
CLEAN, CORRUPTED, MASK, OUTPUT = "clean", "corrupted", "mask", "output"
RESTORED = "restored"  # artifact: a run's answer (dip: the output where its stop detector stops)
STOPPED_BY = "stopped_by"  # summary: the detector whose `stop:` ended the run, else None
REFERENCE = "reference"  # summary: "image" (a clean reference scores the run) or NO_REFERENCE
NO_REFERENCE = "none"  # no clean image: no psnr, no oracle, no gap
SIGMA_EST = "sigma_est"  # summary: the noise level estimated from the corrupted image
# Per early-stopping detector d: summary `stop_<field>_<d>`, metric `det_<d>` per logging step.
STOP_FIELDS = ("step", "psnr", "ssim", "gap", "decided")
_STOP_KEY = re.compile(r"^stop_(step|psnr|ssim|gap|decided)_(.+)$")
_DETECTOR_PREFIX = "det_"


def stop_key(field: str, detector: str) -> str:
    """`stop_step_wmv`: a detector's summary key; `field` one of STOP_FIELDS."""
    if field not in STOP_FIELDS:
        raise ValueError(f"field: {field!r} is not a stop field (allowed: {', '.join(STOP_FIELDS)})")
    return f"stop_{field}_{detector}"


def parse_stop_key(name: str) -> tuple[str, str] | None:
    """`(field, detector)` of a detector's summary key, None for any other name."""
    m = _STOP_KEY.match(str(name))
    return (m.group(1), m.group(2)) if m else None


def detector_metric(detector: str) -> str:
    """`det_wmv`: the metric a detector logs its statistic under."""
    return _DETECTOR_PREFIX + detector


def parse_detector_metric(name: str) -> str | None:
    """The detector of a `det_<d>` metric name, None for any other name."""
    name = str(name)
    return name[len(_DETECTOR_PREFIX):] if name.startswith(_DETECTOR_PREFIX) and len(name) > 4 else None


# ---------------------------------------------------------------------------- StyleGAN names
#
# Per-space summary keys are `<space>_<key>`; per-frame metrics `<measure>/<space>/<who>` with
# `who` one of `pair<i>` (interpolate), `latent<i>` (traverse) or `mean`; per-space metrics
# `<measure>/<space>`; strips `strip/<space>/<who>`, grids `grid` or `grid/<space>`.

LATENT_SPACES = ("z", "w")
INTERP_SPACES = ("z_lerp", "z_slerp", "w_lerp")
Z_INTERP = ("z_lerp", "z_slerp")
W_INTERP = "w_lerp"
MEAN = "mean"
SAMPLE_KEYS = ("diversity", "pixel_std", "prob_mean", "positive_frac")
DIRECTION_KEYS = ("val_accuracy", "train_accuracy", "proj_std", "prob_corr")
INTERP_KEYS = ("flip_rate", "flip_step_mean", "flip_frac_mean", "label_changes_mean", "max_step_dist_mean",
               "path_length_mean")
TRAVERSE_KEYS = ("prob_delta", "prob_monotone_frac", "mean_prob_monotone", "prob_spearman", "success_rate",
                 "ssim_at_max", "pixel_dist_at_max", "embed_dist_at_max", "ssim_loss_per_dprob",
                 "pixel_dist_per_dprob", "embed_dist_per_dprob", "alpha_unit")
FRAME_MEASURES = ("prob", "label", "step_dist", "ssim", "pixel_dist", "embed_dist")
EXTREMES = "extremes"  # stylegan-direction: the samples the SVM scores most negative / positive
GRID = "grid"
_SPACE = "|".join(sorted({*LATENT_SPACES, *INTERP_SPACES}, key=len, reverse=True))
_FLIP_KEY = re.compile(rf"^({_SPACE})_flip_step_pair(\d+)$")
_SPACE_KEY = re.compile(rf"^({_SPACE})_(.+)$")
_FRAME = re.compile(rf"^({'|'.join(FRAME_MEASURES)})/({_SPACE})/(pair\d+|latent\d+|{MEAN})$")
_WHO = re.compile(r"^(pair|latent)(\d+)$")


def space_key(space: str, key: str) -> str:
    """`w_ssim_at_max`: a per-space summary key."""
    return f"{space}_{key}"


def parse_space_key(name: str) -> tuple[str, str] | None:
    """`(space, key)` of a per-space summary key, None for any other name."""
    m = _SPACE_KEY.match(str(name))
    return (m.group(1), m.group(2)) if m else None


def flip_step_key(space: str, pair: int) -> str:
    """`z_lerp_flip_step_pair3`: the frame where pair 3's label first flips along `space`."""
    return f"{space}_flip_step_pair{pair}"


def parse_flip_step_key(name: str) -> tuple[str, int] | None:
    """`(space, pair)` of a flip-step summary key, None for any other name."""
    m = _FLIP_KEY.match(str(name))
    return (m.group(1), int(m.group(2))) if m else None


def flip_step(labels: list[int]) -> int | None:
    """What a flip step means: the first frame whose label differs from frame 0's; None if it never
    changes. The job stores it per pair (`flip_step_key`); readers of per-frame labels use this."""
    for k, lab in enumerate(labels):
        if lab != labels[0]:
            return k
    return None


def flips_before_key(space: str) -> str:
    """`z_lerp_flips_before_w_lerp_frac`: the share of pairs that flip sooner along `space` than along w."""
    return f"{space}_flips_before_{W_INTERP}_frac"


def direction_key(key: str) -> str:
    """stylegan-traverse's copy of its direction's accuracy: `direction_w_val_accuracy`."""
    return f"direction_{key}"


def pair(i: int) -> str:
    return f"pair{i}"


def latent(i: int) -> str:
    return f"latent{i}"


def parse_who(who: str) -> tuple[str, int] | None:
    """`("pair", 3)` / `("latent", 0)` of a frame's subject, None for `mean` or anything else."""
    m = _WHO.match(str(who))
    return (m.group(1), int(m.group(2))) if m else None


def space_metric(measure: str, space: str) -> str:
    """`prob/z`, `diversity/w`, `alpha/z`, `normal/w`: a per-space metric."""
    return f"{measure}/{space}"


_SPACE_METRIC = re.compile(rf"^([a-z_]+)/({_SPACE})$")


def parse_space_metric(name: str) -> tuple[str, str] | None:
    """`(measure, space)` of a per-space metric, None for any other name."""
    m = _SPACE_METRIC.match(str(name))
    return (m.group(1), m.group(2)) if m else None


def frame_metric(measure: str, space: str, who: str) -> str:
    """`prob/z_lerp/pair0`, `ssim/w/latent2`, `prob/z/mean`: a per-frame metric (the step is the frame)."""
    return f"{measure}/{space}/{who}"


def parse_frame_metric(name: str) -> tuple[str, str, str] | None:
    """`(measure, space, who)` of a per-frame metric, None for any other name."""
    m = _FRAME.match(str(name))
    return (m.group(1), m.group(2), m.group(3)) if m else None


def strip_artifact(space: str, who: str) -> str:
    """`strip/w_lerp/pair0`, `strip/z/latent1`: one row of frames."""
    return f"strip/{space}/{who}"


def grid_artifact(space: str | None = None) -> str:
    """`grid` (stylegan-sample's z row over its w row) or `grid/<space>` (a traversal, a row per latent)."""
    return GRID if space is None else f"{GRID}/{space}"


def samples_artifact(space: str) -> str:
    """`samples/z`: one row of stylegan-sample's images."""
    return f"samples/{space}"


_ARTIFACT = re.compile(rf"^(strip|grid|samples)/({_SPACE})(?:/(pair\d+|latent\d+))?$")


def parse_artifact(name: str) -> tuple[str, str | None, str | None]:
    """`(what, space, who)` of an artifact name: `("strip", "z_lerp", "pair0")`, `("grid", "w", None)`,
    `("samples", "z", None)`; any other name (`grid`, `extremes`, `output`) is `(name, None, None)`."""
    m = _ARTIFACT.match(str(name))
    return (m.group(1), m.group(2), m.group(3)) if m else (str(name), None, None)


def headline_artifact(kind: str, name: str) -> bool:
    """Whether `name` is one of the images that show a StyleGAN run's result best (what the
    Compare page shows unless told otherwise): the z/w grid, pair 0's strips, the SVM's
    extremes, a traversal's per-space grids."""
    what, space, who = parse_artifact(name)
    if kind == SG_SAMPLE:
        return name == GRID
    if kind == SG_INTERPOLATE:
        return what == "strip" and who == pair(0)
    if kind == SG_DIRECTION:
        return name == EXTREMES
    if kind == SG_TRAVERSE:
        return what == GRID and space is not None
    return False
