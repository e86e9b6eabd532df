"""stylegan-traverse: move latents along +-alpha * n and watch the attribute and the identity.

Where n comes from: by default the job recomputes it with stylegan-direction's recipe from the
nested `direction` settings and this job's own generator, seed, truncation and classifier
(deterministic: same settings, same n; cached per process). Or `normals_file` names an .npz
written by stylegan-direction (`save_normals`), with arrays "z" and/or "w".

Latents: `n_latents` z ~ N(0, I). Space z: z + a*n_z, then mapping and truncation; space w:
truncate(mapping(z)) + a*n_w. Both start from the same image (a = 0).
alphas = linspace(-alpha_max, alpha_max, steps) (steps odd, so a = 0 is a frame). With
`alpha_units="std"` a is in standard deviations of the latents' projection on n (z: 1; w: measured
over 4096 mapped samples), so z and w moves are comparable; "absolute" uses raw latent units.

Per frame k (metric step k): `alpha` (in the chosen units), `alpha/<space>` (latent units),
`prob/<space>/latent<i>`, `ssim/<space>/latent<i>`, `pixel_dist/<space>/latent<i>` (RMSE vs a=0),
`embed_dist/<space>/latent<i>` (1 - cosine, with `identity_model`), and `.../mean` over latents.
"""

from __future__ import annotations

import json
import threading
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from priorlab.vocab import MEAN, direction_key, frame_metric, grid_artifact, latent, space_key, space_metric, strip_artifact

from ... import inputs
from ...sink import Sink
from ..latents import pixel_distance, ssim
from .common import ClassifiedParams, Renderer, make_classifier, score, strip, summary_base
from .direction import DirectionOptions, DirectionSettings, fit_direction, load_normals, score_shard


class TraverseParams(ClassifiedParams):
    n_latents: int = Field(default=5, ge=1, le=1024, description="latents moved along the direction")
    alpha_max: float = Field(default=3.0, gt=0.0, description="frames go from -alpha_max to +alpha_max")
    steps: int = Field(default=7, ge=3, le=257, description="frames per traversal, odd (alpha = 0 is a frame)")
    alpha_units: Literal["std", "absolute"] = Field(default="std", description="std = standard deviations "
                                                    "of the latents along n (comparable in z and w), absolute = "
                                                    "raw latent units")
    spaces: list[Literal["z", "w"]] = Field(default_factory=lambda: ["z", "w"], min_length=1,
                                            description="latent spaces to traverse")
    direction: DirectionOptions = Field(default_factory=DirectionOptions, description="how n is recomputed "
                                        "when no normals_file is given (a nested block)")
    normals_file: str | None = Field(default=None, description="an .npz written by stylegan-direction's "
                                     "save_normals (arrays z and/or w); default: recompute n")
    identity_model: str | None = Field(default=None, description="TorchScript file: images (N,3,H,W) in "
                                       "[0,1] -> embeddings (N, D), for an identity distance")
    identity_input_size: int | None = Field(default=None, ge=8, le=2048, description="resize images to this "
                                            "side before identity_model (default: as rendered)")

    def input_files(self) -> list[inputs.InputFile]:
        files = super().input_files()
        if self.normals_file:
            files.append(inputs.InputFile("normals_file", self.normals_file, "normals"))
        if self.identity_model:
            files.append(inputs.InputFile("identity_model", self.identity_model, "torchscript"))
        return files

    @field_validator("steps")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"steps: {v} is not allowed (must be odd so that alpha = 0 is a frame, e.g. {v + 1})")
        return v


_NORMALS: dict[str, tuple[dict, dict]] = {}
_NORMALS_LOCK = threading.Lock()


def direction_settings(params: TraverseParams) -> DirectionSettings:
    shared = params.model_dump(include=set(ClassifiedParams.model_fields))
    return DirectionSettings(**shared, **params.direction.model_dump(), spaces=params.spaces)


def normals_for(params: TraverseParams) -> tuple[dict[str, np.ndarray], dict, str]:
    """({space: unit normal}, direction summary, source) — from the file or recomputed (cached)."""
    if params.normals_file:
        normals = load_normals(inputs.resolve(params.normals_file))
        missing = [s for s in params.spaces if s not in normals]
        if missing:
            raise ValueError(f"normals_file: {params.normals_file!r} has no normal for {missing} "
                             f"(it holds {sorted(normals)})")
        return {s: v / np.linalg.norm(v) for s, v in normals.items()}, {}, "file"
    settings = direction_settings(params)
    key = json.dumps(settings.model_dump(mode="json", exclude={"device", "batch_size"}), sort_keys=True)
    with _NORMALS_LOCK:
        if key not in _NORMALS:
            _NORMALS[key] = tuple(reversed(fit_direction(settings, [score_shard(settings)])))
        normals, fit = _NORMALS[key]
    return normals, fit, "recomputed"


def _embedder(params: TraverseParams, device: torch.device):
    if not params.identity_model:
        return None
    model = torch.jit.load(str(inputs.resolve(params.identity_model)), map_location=device).eval()

    @torch.no_grad()
    def embed(images: torch.Tensor) -> torch.Tensor:
        x = images
        if params.identity_input_size and x.shape[-1] != params.identity_input_size:
            s = params.identity_input_size
            x = torch.nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        e = model(x)
        return torch.nn.functional.normalize(e.flatten(1).float(), dim=1)

    return embed


def _monotone(values: np.ndarray, tol: float = 1e-4) -> bool:
    return bool(np.all(np.diff(values) >= -tol))


def run(params: TraverseParams, sink: Sink) -> dict:
    r = Renderer(params)
    clf = make_classifier(params, r)
    normals, fit, source = normals_for(params)
    embed = _embedder(params, r.device)
    alphas = np.linspace(-params.alpha_max, params.alpha_max, params.steps)
    mid = params.steps // 2
    z = r.z(params.n_latents, "traverse", "latents")  # (L, z_dim)
    w = r.map(z)  # (L, w_dim)
    summary = summary_base(params, r)
    summary.update(normals_source=source, n_latents=params.n_latents, steps=params.steps,
                   alpha_max=params.alpha_max, alpha_units=params.alpha_units, positive=clf.positive)
    summary.update({direction_key(k): v for k, v in fit.items() if k.endswith("accuracy")})
    for k, a in enumerate(alphas):
        sink.metrics(k, {"alpha": float(a)})
    for space in params.spaces:
        n = torch.from_numpy(normals[space]).to(r.device)
        if params.alpha_units == "std":
            unit = 1.0 if space == "z" else float((r.map(r.z(4096, "traverse", "w-spread")) @ n).std())
        else:
            unit = 1.0
        frames = []  # per alpha: (L, 3, H, W)
        for a in alphas:
            step = float(a) * unit * n
            frames.append(r.images_z(z + step) if space == "z" else r.images_w(w + step))
        imgs = torch.stack(frames, dim=1)  # (L, K, 3, H, W)
        L, K = imgs.shape[:2]
        flat = imgs.reshape(L * K, *imgs.shape[2:])
        prob = score(clf, flat, params.batch_size).reshape(L, K).cpu().numpy()
        ref = imgs[:, mid: mid + 1].expand_as(imgs).reshape(L * K, *imgs.shape[2:])
        sim = ssim(flat, ref).reshape(L, K).cpu().numpy()
        dist = pixel_distance(flat, ref).reshape(L, K).cpu().numpy()
        emb = None
        if embed is not None:
            e = torch.cat([embed(c) for c in flat.split(params.batch_size)]).reshape(L, K, -1)
            emb = (1 - (e * e[:, mid: mid + 1]).sum(-1)).cpu().numpy()  # cosine distance to a = 0
        for k in range(K):
            values = {space_metric("alpha", space): float(alphas[k] * unit), frame_metric("prob", space, MEAN): float(prob[:, k].mean()),
                      frame_metric("ssim", space, MEAN): float(sim[:, k].mean()), frame_metric("pixel_dist", space, MEAN): float(dist[:, k].mean())}
            for i in range(L):
                values[frame_metric("prob", space, latent(i))] = float(prob[i, k])
                values[frame_metric("ssim", space, latent(i))] = float(sim[i, k])
                values[frame_metric("pixel_dist", space, latent(i))] = float(dist[i, k])
                if emb is not None:
                    values[frame_metric("embed_dist", space, latent(i))] = float(emb[i, k])
            if emb is not None:
                values[frame_metric("embed_dist", space, MEAN)] = float(emb[:, k].mean())
            sink.metrics(k, values)
        for i in range(L):
            sink.artifact(0, strip_artifact(space, latent(i)), strip(imgs[i]))
        sink.artifact(0, grid_artifact(space), strip(imgs.reshape(L * K, *imgs.shape[2:]), nrow=K))
        summary.update(_space_summary(space, prob, sim, dist, emb, clf.threshold, unit))
    return summary


def _space_summary(space: str, prob: np.ndarray, sim: np.ndarray, dist: np.ndarray, emb: np.ndarray | None,
                   threshold: float, unit: float) -> dict:
    """prob, sim, dist: (L, K) over latents and alphas (a = 0 in the middle)."""
    from scipy.stats import spearmanr

    L, K = prob.shape
    mid = K // 2
    ends = [0, K - 1]
    dprob = np.abs(prob - prob[:, mid: mid + 1])  # attribute change vs a = 0
    moved = dprob.sum()
    rho = [spearmanr(np.arange(K), p).statistic if np.ptp(p) > 0 else np.nan for p in prob]
    rho = [x for x in rho if np.isfinite(x)]
    out = {
        space_key(space, "alpha_unit"): unit,
        space_key(space, "prob_delta"): float((prob[:, -1] - prob[:, 0]).mean()),
        space_key(space, "prob_monotone_frac"): float(np.mean([_monotone(p) for p in prob])),
        space_key(space, "mean_prob_monotone"): int(_monotone(prob.mean(axis=0))),
        space_key(space, "prob_spearman"): float(np.mean(rho)) if rho else None,
        space_key(space, "success_rate"): float(np.mean((prob[:, 0] < threshold) & (prob[:, -1] >= threshold))),
        space_key(space, "ssim_at_max"): float(sim[:, ends].mean()),
        space_key(space, "pixel_dist_at_max"): float(dist[:, ends].mean()),
        # identity lost per unit of attribute change: lower keeps more of the original features
        space_key(space, "ssim_loss_per_dprob"): float((1 - sim).sum() / moved) if moved > 0 else None,
        space_key(space, "pixel_dist_per_dprob"): float(dist.sum() / moved) if moved > 0 else None,
    }
    if emb is not None:
        out[space_key(space, "embed_dist_at_max")] = float(emb[:, ends].mean())
        out[space_key(space, "embed_dist_per_dprob")] = float(emb.sum() / moved) if moved > 0 else None
    return out
