"""stylegan-sample: a row of images from random z and a row from random w (the report's Figure 20).

Row "z": z ~ N(0, I), image = G(z) (mapping, truncation psi, synthesis).
Row "w": random w vectors, by `w_source`:
  "mapped"   (default) w = mapping(z') for fresh z' (an independent stream): random points of
             the generator's own W distribution, then truncated like row z.
  "gaussian" w ~ N(0, I) in w_dim fed straight to synthesis (after truncation toward w_avg), the
             naive "random style vector" of the report's notebook; shows that W is not Gaussian.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from pydantic import Field

from priorlab.vocab import LATENT_SPACES, grid_artifact, samples_artifact, space_key, space_metric

from ...sink import Sink
from ..classifiers import ClassifierConfig
from ..latents import pixel_distance
from ..util import randn
from .common import Renderer, StyleGANParams, make_classifier, score, strip, summary_base


class SampleParams(StyleGANParams):
    n: int = Field(default=8, ge=1, le=1024, description="images per row (one z row, one w row)")
    w_source: Literal["mapped", "gaussian"] = Field(default="mapped", description="the w row: mapped = "
                                                    "mapping(z) of fresh z, gaussian = w ~ N(0, I) fed to synthesis")
    classifier: ClassifierConfig | None = Field(default=None, description="optional: score the samples with "
                                                "this attribute classifier (a nested block)")
    calibration_samples: int = Field(default=256, ge=8, le=100_000, description="images that calibrate a "
                                     "builtin classifier's center/scale on this generator")

    def input_files(self) -> list:
        return [*super().input_files(), *(self.classifier.input_files("classifier") if self.classifier else [])]


def _diversity(images: torch.Tensor) -> float:
    """Mean RMSE pixel distance between all pairs of images in a row (0 for a single image)."""
    n = images.shape[0]
    if n < 2:
        return 0.0
    i, j = torch.triu_indices(n, n, offset=1)
    return float(pixel_distance(images[i], images[j]).mean())


def run(params: SampleParams, sink: Sink) -> dict:
    r = Renderer(params)
    G = r.G
    t0 = time.perf_counter()
    z = r.z(params.n, "sample", "z")
    img_z = r.images_z(z)  # (n, 3, H, W)
    if params.w_source == "mapped":
        w = r.map(r.z(params.n, "sample", "w-source"))
    else:
        w = r.truncate(randn((params.n, G.w_dim), params.seed, "sample", "w-gaussian", device=r.device))
    img_w = r.images_w(w)
    seconds = time.perf_counter() - t0

    sink.artifact(0, grid_artifact(), strip(torch.cat([img_z, img_w]), nrow=params.n))
    sink.artifact(0, samples_artifact("z"), strip(img_z))
    sink.artifact(0, samples_artifact("w"), strip(img_w))
    summary = summary_base(params, r)
    summary.update(n=params.n, w_source=params.w_source, seconds=seconds,
                   images_per_second=2 * params.n / max(seconds, 1e-9))
    img = {"z": img_z, "w": img_w}
    summary.update({space_key(s, "diversity"): _diversity(img[s]) for s in LATENT_SPACES})
    summary.update({space_key(s, "pixel_std"): float(img[s].std()) for s in LATENT_SPACES})
    metrics = {space_metric("diversity", s): summary[space_key(s, "diversity")] for s in LATENT_SPACES}
    if params.classifier is not None:
        clf = make_classifier(params, r)
        prob = {s: score(clf, img[s], params.batch_size) for s in LATENT_SPACES}
        summary.update({space_key(s, "prob_mean"): float(prob[s].mean()) for s in LATENT_SPACES})
        summary.update({space_key(s, "positive_frac"): float(clf.label(prob[s]).float().mean()) for s in LATENT_SPACES})
        for i in range(params.n):
            sink.metrics(i, {space_metric("prob", s): float(prob[s][i]) for s in LATENT_SPACES})
    sink.metrics(0, metrics)
    return summary
