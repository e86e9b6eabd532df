"""Deep Image Prior: denoising and inpainting by fitting a randomly initialised network.

Pure PyTorch; reports through a `tasks.sink.Sink`. Entry points:
    run(DipParams, sink) -> summary               the `dip` kind
    run_baseline(BaselineParams, sink) -> summary the `dip-baseline` kind (scikit-image, bm3d)
"""

from tasks.dip.baselines import run_baseline
from tasks.dip.fit import run
from tasks.dip.models import ARCHS, build_model
from tasks.dip.params import BaselineParams, DipParams

__all__ = ["ARCHS", "BaselineParams", "DipParams", "build_model", "run", "run_baseline"]
