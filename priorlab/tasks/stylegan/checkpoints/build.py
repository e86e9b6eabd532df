"""A generator from a config and an NVIDIA-layout state dict: the step every format ends in."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..networks import Generator, GeneratorConfig
from ..nvidia_pickle import SLACK_BYTES, CheckpointError

W_AVG_SAMPLES = 4096  # samples behind w_avg when a checkpoint has none (rosinality's mean_latent(4096))


def params_limit(path: Path) -> int:
    """Parameters a checkpoint file can back: one per two bytes (float16 or wider), plus slack."""
    return (path.stat().st_size + SLACK_BYTES) // 2


def build_generator(cfg: GeneratorConfig, state_dict: dict[str, torch.Tensor], *,
                    max_params: int | None = None) -> Generator:
    """A generator from a config and an NVIDIA-layout state dict (strict: every key must fit).

    The config is checked against the tensors' shapes on the meta device first, so a config
    read from a file can never make us allocate more than the file's own tensors; with
    `max_params` (`params_limit(path)`), the declared network must also fit in the file, so
    tensors that hold no bytes of it (views of one storage, meta tensors) cannot declare more.
    """
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError("the state dict is not a dict of tensors")
    blocks = int(math.log2(cfg.img_resolution)) - 1
    if cfg.mapping_layers > len(state_dict) or 2 * blocks > len(state_dict) or len(cfg.resample_filter) > 16:
        raise CheckpointError(f"config (resolution {cfg.img_resolution}, {cfg.mapping_layers} mapping layers, "
                              f"{len(cfg.resample_filter)}-tap filter) does not fit {len(state_dict)} tensors")
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Generator(cfg).state_dict().items()}
    params = sum(math.prod(s) for s in shapes.values())
    if max_params is not None and params > max_params:
        raise CheckpointError(f"the declared network has {params} parameters, more than the file can hold "
                              f"({max_params}: one per two bytes)")
    wrong = [f"{k} {list(v.shape)} (expected {list(shapes[k])})" for k, v in state_dict.items()
             if k in shapes and v.shape != shapes[k]]
    missing = [k for k in shapes if k not in state_dict and not k.endswith("resample_filter")]  # fixed filters: ours
    unexpected = [k for k in state_dict if k not in shapes]
    if missing or unexpected or wrong:
        raise CheckpointError(f"checkpoint does not fit the generator: missing {missing[:8]}, unexpected "
                              f"{unexpected[:8]}, wrong shape {wrong[:4]}")
    G = Generator(cfg)
    G.load_state_dict(state_dict, strict=False)
    return G


def estimate_w_avg(G: Generator) -> None:
    """w_avg for a checkpoint that has none: the mean of mapping(z) over 4096 seeded z."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = torch.randn(W_AVG_SAMPLES, G.z_dim, generator=g)  # (4096, z_dim)
        G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))
