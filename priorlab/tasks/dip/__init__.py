"""Deep Image Prior: denoising and inpainting by fitting a randomly initialised network.

Pure PyTorch; reports through a `priorlab.tasks.sink.Sink`. Entry points:
    run(DipParams, sink) -> summary               the `dip` kind
    run_baseline(BaselineParams, sink) -> summary the `dip-baseline` kind (scikit-image, bm3d)
"""

from priorlab.tasks.dip.baselines import run_baseline
from priorlab.tasks.dip.fit import run
from priorlab.tasks.dip.models import ARCHS, build_model
from priorlab.tasks.dip.params import BaselineParams, DipParams

__all__ = ["ARCHS", "BaselineParams", "DipParams", "build_model", "run", "run_baseline"]
