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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
