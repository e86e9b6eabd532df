"""StyleGAN2 in plain PyTorch: the generator, checkpoint loaders, attribute classifiers and jobs.

`TASK_KINDS` lists `(kind_name, ParamsModel, run)` for the task registry:
  stylegan-sample       rows of images from random z and random w (truncation psi)
  stylegan-interpolate  z lerp / z slerp / w lerp between pairs; the frame where the label flips
  stylegan-direction    InterFaceGAN: score, keep the confident ends, LinearSVC -> unit normal (z, w)
  stylegan-traverse     move along +-alpha*n: attribute probability and identity (SSIM, distance)
"""

from __future__ import annotations

from .jobs import direction, interpolate, sample, traverse

TASK_KINDS = [
    ("stylegan-sample", sample.SampleParams, sample.run),
    ("stylegan-interpolate", interpolate.InterpolateParams, interpolate.run),
    ("stylegan-direction", direction.DirectionParams, direction.run),
    ("stylegan-traverse", traverse.TraverseParams, traverse.run),
]

__all__ = ["TASK_KINDS"]
