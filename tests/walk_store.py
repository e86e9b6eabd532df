"""A store like the one the next human walk uses: the session's `tiny` sweep plus what it lacks,
written by the real sweep code at tiny sizes (32 px, width 8, a few dozen iterations).

- `search`: random search with ASHA over a log-uniform `lr` and a categorical `arch` (some
  runs pruned; a search cannot have groups or packing, so it is a sweep of its own).
- `walk`: packed DIP runs with a plug-in loss, no-reference runs on a user's noisy photo,
  stylegan-direction and stylegan-traverse runs, and one failed StyleGAN run with a list
  parameter (issue 18 1.1).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np

SEARCH = textwrap.dedent(
    """
    name: search
    kind: dip
    fixed: {image: astronaut, size: 32, width: 8, depth: 1, iterations: 40, log_every: 10,
            snapshots: [40], task: denoise, sigma: 0.1}
    grid:
      lr: {loguniform: [1.0e-6, 1.0e-1]}
      arch: [seed-double, seed-single]
    search: {type: random, num_samples: 3, seed: 0}
    scheduler: {type: asha, metric: psnr, mode: max, grace_period: 10, reduction_factor: 2}
    max_concurrent: 1
    resources: {cpu: 1}
    """
)

WALK = textwrap.dedent(
    """
    name: walk
    kind: dip
    fixed: {size: 32, width: 8, depth: 1, iterations: 30, log_every: 10, snapshots: [30],
            arch: seed-single, task: denoise}
    grid:
      sigma: [0.1, 0.2]
      loss: [l2, "tests.fault_plugins:smooth_l1"]
    groups:
      - name: packed
        fixed: {image: coffee}
      - name: no-reference
        fixed: {corrupted: "{noisy}", size: native, sigma: auto, loss: l2}
        grid: {seed: [0, 1]}
      - name: direction
        kind: stylegan-direction
        fixed: {generator: "random:16", n_samples: 128, keep_fraction: 0.25, calibration_samples: 32,
                classifier: {source: "builtin:redness", positive: redder, negative: less red}}
      - name: traverse
        kind: stylegan-traverse
        fixed: {generator: "random:16", n_latents: 2, steps: 5, alpha_max: 2.0, calibration_samples: 32,
                classifier: {source: "builtin:redness", positive: redder, negative: less red},
                direction: {n_samples: 128, keep_fraction: 0.25}}
      - name: broken
        kind: stylegan-interpolate
        fixed: {generator: "random:16", pairs: 1, steps: 3, spaces: [z_lerp, w_lerp],
                classifier: {source: "tests.fault_plugins:refuse"}}
    resources: {cpu: 1}
    pack: 4
    """
)


def noisy_photo(path: Path) -> Path:
    """A user's noisy photo with no clean copy: non-square, noise already in the file."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    img = data.chelsea()[::8, ::8][:32, :40] / 255.0
    noisy = np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1)
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(path)
    return path


def add_walk_sweeps(sweep_store: Path, root: Path) -> Path:
    """A copy of the session store (never the shared one: other tests assert its contents) with
    the `search` and `walk` sweeps run into it."""
    from apptest_helpers import sweep_into_store

    shutil.copytree(sweep_store, root / "store")
    sweep_into_store(SEARCH, root, name="search")
    noisy = noisy_photo(root / "noisy.png")
    # exit status 1: the `broken` run fails on purpose
    return sweep_into_store(WALK.replace("{noisy}", str(noisy)), root, name="walk", expect=1)
