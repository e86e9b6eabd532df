"""One DIP run's setup, shared by `fit.run` (one run) and `pack.run_pack` (K runs as one
batched model), so a packed member is set up exactly as the run it stands for.

Everything random is drawn from the run's own seeded generators (`degrade.seeded`, one stream
per purpose), never the global one, so it does not matter which member or which part is set
up first: the data and the input noise on the CPU, the weights on the CPU before they move,
the regularising noise where it is used.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from priorlab.tasks.dip.degrade import STREAM_INPUT, STREAM_REG_NOISE, STREAM_WEIGHTS, prepare, seeded
from priorlab.tasks.dip.inputs import canvas
from priorlab.tasks.dip.models import build_model, init_weights_
from priorlab.tasks.dip.params import DipParams
from priorlab.tasks.dip.record import Recorder
from priorlab.tasks.sink import Sink

INPUT_SCALE = 0.1  # DIP's get_noise: uniform noise times 1/10


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def input_noise(p: DipParams, height: int, width: int) -> torch.Tensor:
    """(1, input_depth, H', W'): the run's fixed network input on its canvas (inputs.canvas: the
    image's size rounded up to a multiple of 2**depth; a square size is its own canvas)."""
    h, w = canvas(height, width, p.depth)
    return torch.rand(1, p.input_depth, h, w, generator=seeded(p.seed, STREAM_INPUT)) * INPUT_SCALE


def build_network(p: DipParams) -> torch.nn.Module:
    """The run's network with its weights drawn from its own seed (on the CPU)."""
    return init_weights_(build_model(p.arch, p.depth, p.width, p.input_depth, p.head), seeded(p.seed, STREAM_WEIGHTS))


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast for `amp` on a GPU; on the CPU, or without `amp`, nothing."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and amp) else contextlib.nullcontext()


@dataclass
class Member:
    """One run's data and bookkeeping: its loss inputs on the device, its fixed network input,
    and its Recorder (metrics, snapshots, best, EMA, divergence, detectors, summary)."""

    p: DipParams
    rec: Recorder
    noise: torch.Tensor  # (1, C, H', W') on the CPU: the fixed network input
    known_idx: torch.Tensor | None  # flat indices of the pixels the loss sees; None: all
    target: torch.Tensor  # (1, 3, P)
    target_shape: tuple[int, int]  # (H, W) of the image
    reg_gen: torch.Generator | None
    t_end: float | None = None  # when the member stopped fitting (packs)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The pixels the loss sees of a (1, 3, H, W) image: all, or the known ones."""
        x = x.flatten(2)  # (1, 3, H*W)
        return x if self.known_idx is None else x.index_select(2, self.known_idx)


def setup(p: DipParams, sink: Sink, device: torch.device,
          memory_format: torch.memory_format = torch.contiguous_format) -> Member:
    """Prepare one run: its data drawn on the CPU (so the numbers do not depend on the device),
    reported through `sink` (clean/corrupted/mask), moved to `device`."""
    clean, corrupted, mask = prepare(p, sink)  # (1, 3, H, W) each; clean None without a reference; mask or None
    height, width = corrupted.shape[-2:]
    noise = input_noise(p, height, width)  # (1, C, H', W'), H' >= H, W' >= W
    clean, corrupted = (None if t is None else t.to(device, memory_format=memory_format) for t in (clean, corrupted))
    known_idx = None
    if mask is not None:
        mask = mask.to(device)
        if p.masked_loss:
            known_idx = mask.flatten().nonzero().squeeze(1)  # one sync, before the loop
    m = Member(
        p=p, rec=Recorder(p, clean, corrupted, mask, sink, device), noise=noise, known_idx=known_idx,
        target=corrupted, target_shape=(height, width),
        reg_gen=seeded(p.seed, STREAM_REG_NOISE, device) if p.reg_noise_std > 0 else None,  # drawn where used
    )
    m.target = m.pixels(corrupted)  # (1, 3, P)
    return m
