"""stylegan-interpolate: where along an interpolation does the classifier change its mind?

Each pair has endpoints z0, z1. Spaces:
  z_lerp   G(lerp(z0, z1, t))
  z_slerp  G(slerp(z0, z1, t))
  w_lerp   synthesis(lerp(w0, w1, t)) with w = truncate(mapping(z)): the same endpoint images
So every space starts and ends on the same two images, and flip steps compare fairly.

`endpoints="opposite"` (default) draws a pool of z, classifies it and pairs a negative start
with a positive end (the report's "under 21 -> over 21"); pairs it cannot fill so are random.

Per frame k (metric step k, t = k / (steps - 1)): `prob/<space>/pair<i>`, `label/<space>/pair<i>`,
`step_dist/<space>/pair<i>` (RMSE to the previous frame), and `t`.
Flip step: the first frame whose label differs from frame 0's.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from priorlab.vocab import INTERP_SPACES, W_INTERP, Z_INTERP, flip_step, flip_step_key, flips_before_key, frame_metric, pair, space_key, strip_artifact

from ...sink import Sink
from ..latents import lerp, pixel_distance, slerp
from .common import ClassifiedParams, Renderer, make_classifier, score, strip, summary_base

class InterpolateParams(ClassifiedParams):
    pairs: int = Field(default=2, ge=1, le=256, description="endpoint pairs to interpolate between")
    steps: int = Field(default=10, ge=2, le=256, description="frames per interpolation, endpoints included")
    spaces: list[Literal["z_lerp", "z_slerp", "w_lerp"]] = Field(
        default_factory=lambda: list(INTERP_SPACES), min_length=1, description="interpolation paths to compare")
    endpoints: Literal["opposite", "random"] = Field(default="opposite", description="opposite = a negative "
                                                     "start and a positive end (from the pool), random = any z")
    pool: int = Field(default=64, ge=2, le=100_000, description="z drawn and classified to find opposite endpoints")


def _endpoints(params: InterpolateParams, r: Renderer, clf) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(pairs, z_dim) starts and ends, and how many pairs have opposite labels by construction."""
    if params.endpoints == "random":
        z = r.z(2 * params.pairs, "interpolate", "endpoints")
        return z[: params.pairs], z[params.pairs:], 0
    pool = r.z(max(params.pool, 2 * params.pairs), "interpolate", "pool")
    labels = clf.label(score(clf, r.images_z(pool), params.batch_size)).cpu()
    neg, pos = torch.nonzero(labels == 0)[:, 0], torch.nonzero(labels == 1)[:, 0]
    k = min(len(neg), len(pos), params.pairs)
    used = set(neg[:k].tolist()) | set(pos[:k].tolist())
    rest = [i for i in range(len(pool)) if i not in used]
    starts = neg[:k].tolist() + rest[: params.pairs - k]
    ends = pos[:k].tolist() + rest[params.pairs - k: 2 * (params.pairs - k)]
    return pool[starts], pool[ends], k


def run(params: InterpolateParams, sink: Sink) -> dict:
    r = Renderer(params)
    clf = make_classifier(params, r)
    z0, z1, opposite = _endpoints(params, r, clf)
    t = torch.linspace(0, 1, params.steps, device=r.device)
    K = params.steps
    summary = summary_base(params, r)
    summary.update(pairs=params.pairs, steps=K, opposite_pairs=opposite, positive=clf.positive,
                   negative=clf.negative)
    flips: dict[str, list[int | None]] = {}
    for space in params.spaces:
        flips[space] = []
        changes, max_step, lengths = [], [], []
        for i in range(params.pairs):
            if space == "z_lerp":
                frames = r.images_z(lerp(z0[i], z1[i], t))
            elif space == "z_slerp":
                frames = r.images_z(slerp(z0[i], z1[i], t))
            else:
                w = r.map(torch.stack([z0[i], z1[i]]))  # (2, w_dim)
                frames = r.images_w(lerp(w[0], w[1], t))
            probs = score(clf, frames, params.batch_size).cpu()  # (K,)
            labels = clf.label(probs).tolist()
            dist = torch.cat([torch.zeros(1), pixel_distance(frames[1:], frames[:-1]).cpu()])  # (K,)
            for k in range(K):
                values = {frame_metric("prob", space, pair(i)): float(probs[k]), frame_metric("label", space, pair(i)): labels[k]}
                if k > 0:
                    values[frame_metric("step_dist", space, pair(i))] = float(dist[k])
                sink.metrics(k, values)
            sink.artifact(0, strip_artifact(space, pair(i)), strip(frames))
            f = flip_step(labels)
            flips[space].append(f)
            summary[flip_step_key(space, i)] = f
            changes.append(sum(a != b for a, b in zip(labels, labels[1:])))
            max_step.append(float(dist[1:].max()))
            lengths.append(float(dist.sum()))
        done = [f for f in flips[space] if f is not None]
        summary[space_key(space, "flip_rate")] = len(done) / params.pairs
        summary[space_key(space, "flip_step_mean")] = float(np.mean(done)) if done else None
        summary[space_key(space, "flip_frac_mean")] = float(np.mean(done) / (K - 1)) if done else None
        summary[space_key(space, "label_changes_mean")] = float(np.mean(changes))
        summary[space_key(space, "max_step_dist_mean")] = float(np.mean(max_step))
        summary[space_key(space, "path_length_mean")] = float(np.mean(lengths))
    for k in range(K):
        sink.metrics(k, {"t": float(t[k])})
    for zs in Z_INTERP:  # does the classifier flip sooner along z than along w?
        if zs in flips and W_INTERP in flips:
            both = [(a, b) for a, b in zip(flips[zs], flips[W_INTERP]) if a is not None and b is not None]
            summary[flips_before_key(zs)] = (float(np.mean([a < b for a, b in both])) if both else None)
    return summary
