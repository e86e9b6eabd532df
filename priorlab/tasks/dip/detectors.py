"""Early-stopping detectors: where a DIP run should stop, decided without the clean image.

DIP's restoration peaks and then declines as the network starts to fit the noise; the
oracle `best_psnr` picks the peak with the clean image, which a user never has. A detector
sees only what the run has - the outputs, the corrupted target, the mask, and the noise
model the user states (type and strength) - and names a stop step. Detectors never touch
the fit (no RNG of the fit, no gradients): a run with or without them is bit-identical.
The clean image only scores the decision afterwards (`priorlab.tasks.dip.record.Recorder`).

Stop steps are logging steps. Detectors may watch every step (`observe`, device-only, no
sync), but they decide at logging steps (`decide`, on the host, after the one sync), so the
stop step always has a logged psnr/ssim: stop_psnr_d is the logged psnr there, and
stop_gap_d = best_psnr - stop_psnr_d >= 0 because the oracle maximises over the same steps.
A detector that has not fired by the end names its best guess so far (below, per detector).

    wmv  ES-WMV, Wang, Li, Zhuang, Chen, Liang, Sun: "Early Stopping for Deep Image Prior",
         TMLR 2023. The running variance of the last W outputs,
         VAR_t = 1/W sum_{i<W} ||x_{t-i} - mean_W||^2 (here also divided by the pixel count),
         is U-shaped: it falls while the network fits structure and rises once it fits noise.
         Stop when VAR has not reached a new minimum for P steps; the stop point is the step
         of minimal VAR. The paper uses W = 100, P = 1000 on 512 px images, where DIP peaks
         after ~1-5k steps; at priorlab's 64-256 px DIP peaks ~10x sooner (the skip net at
         64 px: steps 20-350), before a 100-step window has even filled. Both are scaled by
         1/10, keeping the paper's P/W = 10: W = 10, P = 100. The window lives on the
         device as a ring buffer with anchored running sums (exact
         recompute every W steps, so float32 does not drift): O(pixels) per step.
         Statistic det_wmv: VAR (logged once the window is full). Not fired: the minimum so far.

    dp   The discrepancy principle (Morozov 1966), as used for untrained networks by
         Nittscher, Lameter, Barbano, Leuschner, Jin, Maass: "SVD-DIP: Overcoming the
         Overfitting Problem in DIP-based CT Reconstruction" (MIDL 2023) and Jo, Chun, Choi:
         "Rethinking Deep Image Prior for Denoising" (ICCV 2021, who stop by a noise-aware
         criterion too). A good restoration x is as far from the corrupted target y as the
         clean image is: ||x - y||^2 ~ E||noise||^2. Stop at the first logging step where
         the residual mean square over the loss's pixels falls to TAU times the expected
         noise energy. That energy comes from the run's noise model (type and sigma, which
         the user states), measured by corrupting the current output once more with the same
         noise model and a detector-only RNG stream: it accounts for clipping, the signal
         dependence of Poisson and speckle noise, and the impulse fraction without a formula
         per type. Statistic det_dp: residual / expected energy (fires at <= TAU). Not fired
         (e.g. noiseless inpainting): the last logged step.

    rw   The residual whiteness principle: Lanza, Pragliola, Sgallari, "Residual whiteness
         principle for parameter-free image restoration", Electronic Transactions on
         Numerical Analysis 53 (2020) 329-351 (also Pragliola, Calatroni, Lanza, Sgallari,
         "ADMM-based residual whiteness principle for automatic parameter selection in
         single image super-resolution problems", J. Math. Imaging Vis. 2023): a good
         restoration leaves a residual y - x that looks like the noise, i.e. white. For
         DIP the residual's correlation between neighbouring pixels tells the phases apart
         with no noise level at all: early on the residual still holds image structure
         (neighbours alike: positive correlation); once the network fits the noise, it fits
         the noise's smooth part first (its spectral bias), leaving a high-pass residual
         (negative correlation). Statistic det_rw: the lag-1 normalised autocorrelation of
         the residual (mean of horizontal and vertical, per channel mean removed, over the
         loss's pixels; the whiteness measure of the paper restricted to the nearest lags,
         which carry almost all of it for the noise types here). Fires at the first logging
         step where it reaches RHO_STOP = 0, the value of a white residual. Needs no sigma,
         so it is the default stop of a run with no clean image (params.BLIND_STOP).
         Not fired: the last logged step.

Interface (also what `pack` relies on): a detector is built with a `Context`; the fit calls
`observe(step, out)` after every update, and at logging steps `statistic(step, out)` (a
0-dim tensor on the device, or None while it has no value) then, after the sync,
`decide(step, value)`, which returns True once the decision is final (`--stop` ends the run
there). `stop_step` is its choice so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from priorlab.tasks.dip.degrade import STREAM_DETECTORS, add_noise, seeded


@dataclass
class Context:
    """What a detector may look at: never the clean image."""

    corrupted: torch.Tensor  # (1, 3, H, W) on the device, the target
    mask: torch.Tensor | None  # (1, 1, H, W), 1 on the pixels the loss sees; None: all
    noise: str  # the noise model the user states: type ...
    sigma: float  # ... and strength
    seed: int
    iterations: int
    log_every: int


class Detector:
    name: ClassVar[str]
    why: ClassVar[str]  # why it stops, for the CLI's end-of-run line

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.stop_step: int | None = None
        self.fired = False

    def observe(self, step: int, out: torch.Tensor) -> None:
        """After every update: device work only, never a sync. `out` (1, 3, H, W), unclamped."""

    def statistic(self, step: int, out: torch.Tensor) -> torch.Tensor | None:
        """At a logging step: the detector's statistic as a 0-dim tensor, None when not ready."""
        raise NotImplementedError

    def decide(self, step: int, value: float | None) -> bool:
        """At a logging step, after the sync: update the choice; True once it is final."""
        raise NotImplementedError


class WMV(Detector):
    """ES-WMV: windowed moving variance of the outputs (module doc)."""

    name = "wmv"
    why = "the outputs' moving variance made no new low for its patience; the stop is at that low"
    WINDOW = 10  # W: the paper's 100, scaled to priorlab's image sizes (module doc)
    PATIENCE = 100  # P: the paper's 1000, likewise

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.buf: torch.Tensor | None = None  # (W, 3*H*W) the last W outputs, ring
        self.anchor = self.s = self.q = None  # sums of (x - anchor) and ||x - anchor||^2
        self.n = 0
        self.best: float | None = None

    def observe(self, step: int, out: torch.Tensor) -> None:
        x = out.detach().reshape(-1).float()  # (3*H*W,)
        w = self.WINDOW
        if self.buf is None:
            self.buf = torch.empty(w, x.numel(), device=x.device)
            self.anchor = x.clone()
            self.s = torch.zeros_like(x)
            self.q = torch.zeros((), device=x.device)
        slot = self.n % w
        d = x - self.anchor
        if self.n >= w:  # drop the oldest output
            old = self.buf[slot] - self.anchor
            self.s -= old
            self.q -= old.square().sum()
        self.buf[slot] = x
        self.s += d
        self.q += d.square().sum()
        self.n += 1
        if self.n % w == 0:  # re-anchor at the window's mean: exact sums, no float32 drift
            self.anchor = self.buf.mean(0)
            self.s.zero_()
            self.q = (self.buf - self.anchor).square().sum()

    def statistic(self, step: int, out: torch.Tensor) -> torch.Tensor | None:
        if self.n < self.WINDOW:
            return None
        w = self.WINDOW
        mean_d = self.s / w
        return (self.q / w - mean_d.square().sum()) / self.s.numel()

    def decide(self, step: int, value: float | None) -> bool:
        if self.fired:  # final: a later, lower variance does not move a decision already made
            return True
        if value is None:
            return False
        if self.best is None or value < self.best:
            self.best, self.stop_step = value, step
        self.fired = step - self.stop_step >= self.PATIENCE
        return self.fired


class Discrepancy(Detector):
    """The discrepancy principle with the run's noise model (module doc)."""

    name = "dp"
    why = "the residual fell to the noise energy the noise model expects"
    TAU = 1.0

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.gen = seeded(ctx.seed, STREAM_DETECTORS, ctx.corrupted.device)
        self.mask = ctx.mask
        self.known = ctx.corrupted.numel() if ctx.mask is None else 3 * ctx.mask.sum()

    def _mean_square(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = (a - b).square()
        if self.mask is not None:
            d2 = d2 * self.mask
        return d2.sum() / self.known

    def statistic(self, step: int, out: torch.Tensor) -> torch.Tensor | None:
        x = out.detach().float().clamp(0, 1)  # (1, 3, H, W)
        residual = self._mean_square(x, self.ctx.corrupted)
        energy = self._mean_square(add_noise(x, self.ctx.sigma, self.gen, self.ctx.noise), x)
        return residual / energy.clamp_min(1e-12)

    def decide(self, step: int, value: float | None) -> bool:
        if self.fired:
            return True
        self.stop_step = step  # not fired yet: the last logged step
        self.fired = value is not None and value <= self.TAU
        return self.fired


class ResidualWhiteness(Detector):
    """The residual whiteness principle (module doc): needs no noise level."""

    name = "rw"
    why = "the residual became white (its neighbour correlation fell to zero): what is left is noise"
    RHO_STOP = 0.0  # a white residual has zero correlation between neighbours

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        m = ctx.mask  # (1, 1, H, W) or None
        self.mask = m
        # Neighbour pairs that both lie on the loss's pixels (all of them without a mask).
        self.pairs_h = None if m is None else m[..., :, 1:] * m[..., :, :-1]
        self.pairs_v = None if m is None else m[..., 1:, :] * m[..., :-1, :]

    def statistic(self, step: int, out: torch.Tensor) -> torch.Tensor | None:
        r = self.ctx.corrupted - out.detach().float().clamp(0, 1)  # (1, 3, H, W)
        if self.mask is None:
            r = r - r.mean(dim=(2, 3), keepdim=True)
            var = r.square().mean()
            h = (r[..., :, 1:] * r[..., :, :-1]).mean()
            v = (r[..., 1:, :] * r[..., :-1, :]).mean()
        else:
            m = self.mask
            r = (r - (r * m).sum(dim=(2, 3), keepdim=True) / m.sum().clamp_min(1)) * m
            var = r.square().sum() / (3 * m.sum()).clamp_min(1)
            h = (r[..., :, 1:] * r[..., :, :-1]).sum() / (3 * self.pairs_h.sum()).clamp_min(1)
            v = (r[..., 1:, :] * r[..., :-1, :]).sum() / (3 * self.pairs_v.sum()).clamp_min(1)
        return (h + v) / 2 / var.clamp_min(1e-12)

    def decide(self, step: int, value: float | None) -> bool:
        if self.fired:
            return True
        self.stop_step = step  # not fired yet: the last logged step
        self.fired = value is not None and value <= self.RHO_STOP
        return self.fired


DETECTORS: dict[str, type[Detector]] = {d.name: d for d in (WMV, Discrepancy, ResidualWhiteness)}


def build(names: list[str], ctx: Context) -> dict[str, Detector]:
    return {n: DETECTORS[n](ctx) for n in names}
