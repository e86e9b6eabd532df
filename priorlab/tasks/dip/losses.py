"""The fitting losses. Each takes output and target as `(N, C, P)`: P pixels per channel.

The fit loop flattens images to `(N, C, H*W)` and, for inpainting with the masked loss,
keeps only the known pixels (an index chosen once, so no step syncs the GPU); a loss
therefore never sees the hole and needs no mask argument.

    l1  mean |output - target|
    l2  mean (output - target)^2
    kl  KL(target || output) between per-channel spatial softmax distributions:
        p = softmax over pixels of a target channel, q = the same for the output channel,
        KL = sum_i p_i (log p_i - log q_i), averaged over channels (and images).
        Pixel values are the logits; with a mask only known pixels take part.

A loss may also be user code, `package.module:function`, with the same signature
`(output, target) -> scalar tensor`; `check_loss` validates one before a sweep starts.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from priorlab.tasks.plugins import is_plugin, resolve


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output - target).abs().mean()


def l2(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output - target).square().mean()


def kl(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # The distribution of intensity over space, not the pixels themselves, is compared: this
    # is the report's "matching the distribution" reading of KL divergence.
    log_q = F.log_softmax(output, dim=-1)  # (N, C, P)
    log_p = F.log_softmax(target, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


LOSSES = {"l1": l1, "l2": l2, "kl": kl}


def get(name: str):
    """The loss function a run names: built-in (looked up per call, so tests can patch
    LOSSES) or a plug-in."""
    return resolve(name) if is_plugin(name) else LOSSES[name]


@functools.lru_cache(maxsize=64)
def check_loss(name: str) -> None:
    """Call a plug-in loss on a tiny output/target pair; ValueError naming what is wrong."""
    fn = resolve(name)
    out = torch.rand(1, 3, 16, requires_grad=True)  # (N, C, P)
    try:
        value = fn(out, torch.rand(1, 3, 16))
    except Exception as e:
        raise ValueError(f"{name!r}: calling it on (1, 3, 16) output and target failed ({type(e).__name__}: {e})") from None
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.requires_grad:
        raise ValueError(f"{name!r}: must return a scalar tensor that depends on the output; got "
                         f"{type(value).__name__}{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
