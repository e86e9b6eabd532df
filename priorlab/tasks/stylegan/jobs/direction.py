"""stylegan-direction: a latent direction for the attribute by a linear SVM (InterFaceGAN's recipe).

1. Sample `n_samples` latents, render, score with the classifier (`score_shard`).
2. Keep the `keep_fraction` most confident at each end (highest and lowest probability).
3. Split train/validation (`val_fraction`), fit `LinearSVC` per space, report validation
   accuracy and the unit normal n (pointing toward the positive class) (`fit_direction`).

Spaces: "z" (the sampled z) and "w" (the w fed to synthesis, i.e. after truncation).

Sharding for the cluster: samples come in fixed chunks of `CHUNK`, each drawn from its own
seeded stream; shard s of S scores chunks s, s+S, s+2S, ... Run each
`score_shard(params, s, S)` as its own trial, then `finish(params, shards, sink)` once: the
result is exactly what the single-trial `run` gives, for any S.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from priorlab.vocab import EXTREMES, space_key, space_metric

from ...sink import Sink
from ..util import derive_seed
from .common import ClassifiedParams, Renderer, make_classifier, score, strip, summary_base

CHUNK = 64


class DirectionOptions(BaseModel):
    """How a direction is fitted; stylegan-traverse nests these to recompute its n."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_samples: int = Field(default=2000, ge=16, le=10_000_000, description="latents sampled and scored")
    keep_fraction: float = Field(default=0.2, gt=0.0, le=0.5, description="the most confident fraction kept "
                                 "at each end")
    val_fraction: float = Field(default=0.3, gt=0.0, lt=1.0, description="share of the kept samples held out "
                                "for validation accuracy")
    svm_c: float = Field(default=1.0, gt=0.0, description="LinearSVC regularisation C")


class DirectionSettings(DirectionOptions, ClassifiedParams):
    spaces: list[Literal["z", "w"]] = Field(default_factory=lambda: ["z", "w"], min_length=1,
                                            description="latent spaces to fit a direction in")


class DirectionParams(DirectionSettings):
    n_shards: int = Field(default=1, ge=1, le=100_000, description="split the scoring into N trials spread "
                          "over the cluster (same result for any N)")
    save_normals: str | None = Field(default=None, description="write an .npz with the normals (z, w) for "
                                     "stylegan-traverse's normals_file")


def chunks_of_shard(n_samples: int, shard_index: int, n_shards: int) -> list[int]:
    return list(range(shard_index, math.ceil(n_samples / CHUNK), n_shards))


def score_shard(params: DirectionSettings, shard_index: int = 0, n_shards: int = 1) -> dict[str, np.ndarray]:
    """Render and score this shard's samples: {"index" (m,), "z" (m, z_dim), "w" (m, w_dim), "prob" (m,)}."""
    if not 0 <= shard_index < n_shards:
        raise ValueError(f"shard_index: {shard_index} is not allowed (0 <= shard_index < n_shards={n_shards})")
    r = Renderer(params)
    clf = make_classifier(params, r)
    out: dict[str, list] = {"index": [], "z": [], "w": [], "prob": []}
    for c in chunks_of_shard(params.n_samples, shard_index, n_shards):
        m = min(CHUNK, params.n_samples - c * CHUNK)
        z = r.z(m, "direction", c)  # (m, z_dim)
        w = r.map(z)  # (m, w_dim)
        prob = score(clf, r.images_w(w), params.batch_size)
        out["index"].append(np.arange(c * CHUNK, c * CHUNK + m))
        out["z"].append(z.cpu().numpy())
        out["w"].append(w.cpu().numpy())
        out["prob"].append(prob.cpu().numpy())
    dims = {"z": r.G.z_dim, "w": r.G.w_dim}
    return {k: (np.concatenate(v) if v else np.zeros((0, dims[k]) if k in dims else 0, dtype=np.float32))
            for k, v in out.items()}


def merge_shards(shards: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    merged = {k: np.concatenate([s[k] for s in shards]) for k in ("index", "z", "w", "prob")}
    order = np.argsort(merged["index"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def fit_direction(params: DirectionSettings, shards: list[dict[str, np.ndarray]]) -> tuple[dict, dict[str, np.ndarray]]:
    """SVM per space on the merged shards -> (flat summary, {space: unit normal})."""
    from sklearn.svm import LinearSVC

    data = merge_shards(shards)
    prob = data["prob"].astype(np.float64)
    n = len(prob)
    if n != params.n_samples:
        raise ValueError(f"shards hold {n} samples, params.n_samples is {params.n_samples}: a shard is missing")
    k = max(2, int(round(params.keep_fraction * n)))
    order = np.argsort(prob, kind="stable")
    neg, pos = order[:k], order[-k:]
    keep = np.concatenate([neg, pos])
    y = np.concatenate([np.zeros(k, dtype=int), np.ones(k, dtype=int)])
    perm = np.random.RandomState(derive_seed(params.seed, "direction-split") % (2 ** 32)).permutation(2 * k)
    n_val = min(max(1, int(round(params.val_fraction * 2 * k))), 2 * k - 2)
    val, train = perm[:n_val], perm[n_val:]
    summary: dict = {"n_samples": n, "n_kept": 2 * k, "n_train": len(train), "n_val": n_val,
                     "prob_mean": float(prob.mean()), "prob_kept_neg_max": float(prob[neg].max()),
                     "prob_kept_pos_min": float(prob[pos].min())}
    normals: dict[str, np.ndarray] = {}
    for space in params.spaces:
        x = data[space][keep].astype(np.float64)
        mean = x[train].mean(axis=0)
        svm = LinearSVC(C=params.svm_c, dual="auto", max_iter=20_000, random_state=0)
        svm.fit(x[train] - mean, y[train])
        normal = svm.coef_[0] / np.linalg.norm(svm.coef_[0])
        normals[space] = normal.astype(np.float32)
        proj = data[space].astype(np.float64) @ normal  # all samples, not only the kept ones
        summary[space_key(space, "val_accuracy")] = float(svm.score(x[val] - mean, y[val]))
        summary[space_key(space, "train_accuracy")] = float(svm.score(x[train] - mean, y[train]))
        summary[space_key(space, "proj_std")] = float(proj.std())
        summary[space_key(space, "prob_corr")] = float(np.corrcoef(proj, prob)[0, 1]) if prob.std() > 0 else None
    return summary, normals


def save_normals(path: str | Path, normals: dict[str, np.ndarray], params: DirectionSettings) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **normals, params=np.array(json.dumps(params.model_dump(mode="json"))))
    return path


def load_normals(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k].astype(np.float32) for k in ("z", "w") if k in f.files}


def run(params: DirectionParams, sink: Sink) -> dict:
    """Single trial: score every shard here, then `finish`."""
    shards = [score_shard(params, s, params.n_shards) for s in range(params.n_shards)]
    return finish(params, shards, sink)


def finish(params: DirectionParams, shards: list[dict[str, np.ndarray]], sink: Sink) -> dict:
    """Fit, report (normals as metrics `normal/<space>` with step = component index, the
    `extremes` artifact) and return the summary: what `run` does after scoring. The cluster
    layer calls this once all `score_shard` trials are back."""
    fit, normals = fit_direction(params, shards)
    r = Renderer(params)
    summary = summary_base(params, r)
    summary.update(fit)
    for space, normal in normals.items():
        for i, v in enumerate(normal):
            sink.metrics(i, {space_metric("normal", space): float(v)})
    sink.metrics(0, {space_key(s, "val_accuracy"): summary[space_key(s, "val_accuracy")] for s in normals})
    # The most negative and most positive samples, re-rendered: what the SVM separates.
    data = merge_shards(shards)
    order = np.argsort(data["prob"], kind="stable")
    m = min(8, len(order) // 2)
    pick = np.concatenate([order[:m], order[-m:]])
    imgs = r.images_w(torch.from_numpy(data["w"][pick]).to(r.device))
    sink.artifact(0, EXTREMES, strip(imgs, nrow=m))
    if params.save_normals:
        summary["normals_path"] = str(save_normals(params.save_normals, normals, params))
    return summary
