"""StyleGAN2 in plain PyTorch: the generator, checkpoint loaders, attribute classifiers and jobs.

`TASK_KINDS` lists `(kind_name, ParamsModel, run)` for the task registry:
  stylegan-sample       rows of images from random z and random w (truncation psi)
  stylegan-interpolate  z lerp / z slerp / w lerp between pairs; the frame where the label flips
  stylegan-direction    InterFaceGAN: score, keep the confident ends, LinearSVC -> unit normal (z, w)
  stylegan-traverse     move along +-alpha*n: attribute probability and identity (SSIM, distance)
"""

from __future__ import annotations

from priorlab import vocab

from .jobs import direction, interpolate, sample, traverse

TASK_KINDS = [
    (vocab.SG_SAMPLE, sample.SampleParams, sample.run),
    (vocab.SG_INTERPOLATE, interpolate.InterpolateParams, interpolate.run),
    (vocab.SG_DIRECTION, direction.DirectionParams, direction.run),
    (vocab.SG_TRAVERSE, traverse.TraverseParams, traverse.run),
]

__all__ = ["TASK_KINDS"]
