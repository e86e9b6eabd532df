"""Plug-ins that misbehave on purpose, for the fault tests. Named `tests.fault_plugins:NAME`:
Ray puts the driver's working directory (the project root under pytest) on every worker's
sys.path, so the workers of the session cluster can import it."""

from __future__ import annotations

import os
import signal


def die(images):
    """A classifier whose process dies on its first call, as a segfault or the OOM killer would
    end it: no exception, no cleanup, nothing recorded."""
    os.kill(os.getpid(), signal.SIGKILL)


def die_in_fit(output, target):
    """A loss that passes validation (a 16-pixel probe) and kills its process once a real fit
    calls it: a packed trial dies with every member it was fitting."""
    if output.shape[-1] > 16:
        os.kill(os.getpid(), signal.SIGKILL)
    return (output - target).square().mean()


def raise_in_fit(output, target):
    """A loss that passes validation (a 16-pixel probe) and raises once a real fit calls it: the
    trial fails with a Python error the store keeps as its traceback."""
    if output.shape[-1] > 16:
        raise RuntimeError("raise_in_fit: this loss fails on purpose")
    return (output - target).square().mean()


def refuse(images):
    """A classifier that imports (so the driver's check passes) and raises on every call: a
    StyleGAN run fails with its list parameters stored beside the traceback."""
    raise RuntimeError("refuse: this classifier fails on purpose")


def smooth_l1(output, target):
    """A well-behaved plug-in loss (Huber), so a plug-in sweep has finished runs to show."""
    import torch.nn.functional as F

    return F.smooth_l1_loss(output, target, beta=0.05)
