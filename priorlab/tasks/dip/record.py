"""The per-run bookkeeping of a DIP fit, apart from the training loop itself.

`Recorder` turns one run's outputs into what priorlab reports: metrics at logging steps,
snapshots, best tracking, the EMA of the outputs, the divergence flag, the early-stopping
detectors and the summary. `priorlab.tasks.dip.fit.run` uses one; a packed fit of K members
(`priorlab.tasks.dip.pack`) uses one per member and gets the very same numbers.

Interface (the loop owns the model, the optimizer and the timing):

    rec = Recorder(params, clean, corrupted, mask, sink, device)   # tensors (1, 3, H, W) on device
    for step in 1..iterations:
        ... forward -> out (1, 3, H, W) float, loss (0-dim) ...
        rec.observe(step, out, loss)          # every step: EMA, NaN flag, detectors; no sync
        if rec.is_log_step(step):
            if rec.log(step, out, loss):      # one sync; True: the run ends here
                break
    summary = rec.summary(loop_s=..., wall_s=..., n_params=..., device=...)

`log` is `record(step, measure(step, out, loss).tolist())`: a packed loop may call
`measure` for every member, sync all of them at once (torch.cat(...).tolist()) and hand each
member its slice (length `rec.width`) through `record`. A run ends when it diverges or when
the `stop` detector fires (`rec.ended_by` then says which: "diverged" or the detector name).

Summary keys: see `priorlab.tasks.dip.fit`; per detector d: stop_step_d, stop_psnr_d, stop_ssim_d,
stop_gap_d (the stop step is a logging step, so its psnr/ssim are the logged ones),
stop_decided_d (the logging step where d's decision became final, i.e. where `stop: d` ends
the run - later than stop_step_d for a patience rule; None if it never decided), and
stopped_by (the `stop` detector's name when it ended the run, else None). A run that `stop`
ended knows only the steps it ran: its best_psnr, and so its stop_gap_d, cover those; the
honest gap of a detector comes from runs that went on to `iterations`. Metrics: det_d is
detector d's statistic at each logging step where it has one.
"""

from __future__ import annotations

import torch

from priorlab import vocab
from priorlab.tasks.dip import detectors as det
from priorlab.tasks.dip import noise_level
from priorlab.tasks.dip.metrics import psnr, ssim
from priorlab.tasks.dip.params import AUTO, DipParams
from priorlab.tasks.sink import Sink
from priorlab.vocab import detector_metric, stop_key

EMA_DECAY = 0.99


class Recorder:
    def __init__(
        self,
        params: DipParams,
        clean: torch.Tensor | None,
        corrupted: torch.Tensor,
        mask: torch.Tensor | None,
        sink: Sink,
        device: torch.device,
    ):
        p = self.params = params
        self.sink = sink
        self.clean, self.corrupted = clean, corrupted  # (1, 3, H, W); clean None: no reference, no oracle
        self.mask = mask  # (1, 1, H, W) on device, 1 = known; None for denoising
        self.hole = None if mask is None else 1 - mask
        self.target_mask = None if (mask is None or not p.masked_loss) else mask
        self.log_steps = set(range(p.log_every, p.iterations + 1, p.log_every)) | set(p.snapshots) | {p.iterations}
        self.snapshots = set(p.snapshots)
        # The noise level the detectors assume: the user's, or estimated from the corrupted image
        # (`sigma: auto`). A denoising run always records the estimate, beside the true level.
        self.sigma_est = None
        if p.sigma == AUTO or p.task == "denoise":
            self.sigma_est = noise_level.estimate(corrupted, p.noise)  # one copy to the host, before the loop
        sigma = self.sigma_est if p.sigma == AUTO else p.sigma
        ctx = det.Context(
            corrupted=corrupted, mask=self.target_mask, noise=p.noise, sigma=sigma,
            seed=p.seed, iterations=p.iterations, log_every=p.log_every,
        )
        self.detectors = det.build(p.detectors, ctx)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.ema: torch.Tensor | None = None
        self.best = {"psnr": None, "step": None, "ssim": None, "psnr_ema": None, "psnr_hole": None}
        self.history: dict[int, tuple[float, float]] = {}  # logging step -> (psnr, ssim)
        self.last: dict = {}
        self.steps_done = 0
        self.ended_by: str | None = None  # "diverged" or the stop detector's name
        self.diverged_at: int | None = None
        self.decided: dict[str, int] = {}  # detector -> logging step its decision became final
        self._shown: torch.Tensor | None = None
        self._det_ready: list[str] = []
        self._metric_names: list[str] = []
        # The run's answer (artifact `restored`): the output where the `stop` detector stops, or
        # the last one without a stop rule. (step, image); images from `measure` are never reused.
        self.answer = p.stop if p.stop in self.detectors else None
        self.restored: tuple[int, torch.Tensor] | None = None

        # Input quality: what the restoration has to beat.
        self.inputs = {vocab.REFERENCE: "image" if clean is not None else vocab.NO_REFERENCE}
        if clean is not None:
            self.inputs.update(input_psnr=psnr(corrupted, clean).item(), input_ssim=ssim(corrupted, clean).item())
            if self.hole is not None:
                self.inputs["input_psnr_hole"] = psnr(corrupted, clean, self.hole).item()

    def is_log_step(self, step: int) -> bool:
        return step in self.log_steps

    @torch.no_grad()
    def observe(self, step: int, out: torch.Tensor, loss: torch.Tensor) -> None:
        """After every update: device work only (no sync)."""
        out = out.detach()
        self.bad |= ~torch.isfinite(loss.detach())
        self.ema = out.clone() if self.ema is None else self.ema.lerp_(out, 1 - EMA_DECAY)
        for d in self.detectors.values():
            d.observe(step, out)

    @torch.no_grad()
    def measure(self, step: int, out: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """At a logging step: every number to report, stacked on the device (no sync)."""
        out = out.detach()
        shown = self._shown = out.clamp(0, 1)
        values = {"loss": loss.detach().float(), "psnr_target": psnr(shown, self.corrupted, self.target_mask)}
        if self.clean is not None:
            values.update(psnr=psnr(shown, self.clean), ssim=ssim(shown, self.clean),
                          psnr_ema=psnr(self.ema.clamp(0, 1), self.clean))
        if self.hole is not None and self.clean is not None:
            values["psnr_hole"] = psnr(shown, self.clean, self.hole)
            values["psnr_known"] = psnr(shown, self.clean, self.mask)
        self._det_ready = []
        for name, d in self.detectors.items():
            stat = d.statistic(step, out)
            if stat is not None:
                values[detector_metric(name)] = stat.float()
                self._det_ready.append(name)
        self._metric_names = list(values)
        return torch.stack([*values.values(), self.bad.float()])

    @property
    def width(self) -> int:
        """How many numbers the last `measure` returned."""
        return len(self._metric_names) + 1

    def record(self, step: int, numbers: list[float]) -> bool:
        """At a logging step, after the sync: report, track the best, let the detectors decide.
        True when the run ends here (diverged, or the `stop` detector fired)."""
        *numbers, flagged = numbers
        values = dict(zip(self._metric_names, numbers))
        self.steps_done = step
        core = [v for k, v in values.items() if vocab.parse_detector_metric(k) is None]
        if flagged or any(v != v for v in core):  # NaN output; +inf psnr is a perfect fit
            self.ended_by, self.diverged_at = vocab.DIVERGED, step
            return True
        self.sink.metrics(step, values)
        if step in self.snapshots:
            self.sink.artifact(step, vocab.OUTPUT, self._shown)
        self.last = values
        self.history[step] = (values.get("psnr"), values.get("ssim"))
        best = self.best
        if "psnr" in values and (best["psnr"] is None or values["psnr"] > best["psnr"]):
            best.update(psnr=values["psnr"], step=step, ssim=values["ssim"])
        for k in ("psnr_ema", "psnr_hole"):
            if k in values and (best[k] is None or values[k] > best[k]):
                best[k] = values[k]
        for name, d in self.detectors.items():
            fired = d.decide(step, values.get(detector_metric(name)))
            if fired:
                self.decided.setdefault(name, step)
            if fired and name == self.params.stop and self.ended_by is None:
                self.ended_by = name
        if self.answer is None or self.detectors[self.answer].stop_step == step:
            self.restored = (step, self._shown)
        return self.ended_by is not None

    def log(self, step: int, out: torch.Tensor, loss: torch.Tensor) -> bool:
        """`measure` + the one sync + `record`."""
        return self.record(step, self.measure(step, out, loss).tolist())

    def summary(self, loop_s: float, wall_s: float, n_params: int, device: str) -> dict:
        """The run's summary (module doc); also reports the `restored` image through the sink."""
        last, best = self.last, self.best
        s = dict(self.inputs)
        s["status"] = vocab.DIVERGED if self.ended_by == vocab.DIVERGED else vocab.DONE
        if self.diverged_at is not None:
            s["diverged_at"] = self.diverged_at
        if self.sigma_est is not None:
            s[vocab.SIGMA_EST] = self.sigma_est
        if self.clean is not None:
            s.update(final_psnr=last.get("psnr"), final_ssim=last.get("ssim"), best_psnr=best["psnr"],
                     best_step=best["step"], ssim_at_best=best["ssim"], best_psnr_ema=best["psnr_ema"])
        s.update(
            final_loss=last.get("loss"),
            iterations_done=self.steps_done,
            iters_per_s=self.steps_done / loop_s if loop_s > 0 else None,
            wall_s=wall_s,
            n_params=n_params,
            device=device,
        )
        if self.hole is not None and self.clean is not None:
            s.update(
                final_psnr_hole=last.get("psnr_hole"),
                final_psnr_known=last.get("psnr_known"),
                best_psnr_hole=best["psnr_hole"],
            )
        stopped = self.ended_by not in (None, "diverged")
        last_logged = max(self.history) if self.history else None
        for name, d in self.detectors.items():
            step = d.stop_step if d.stop_step in self.history else last_logged
            s[stop_key("step", name)] = step
            if self.clean is not None:
                sp, ss = self.history[step] if step is not None else (None, None)
                s[stop_key("psnr", name)] = sp
                s[stop_key("ssim", name)] = ss
                # A stopped run's oracle covers only the steps it ran: its gaps would all read as
                # if the detectors were perfect. Absent, not flattering (README: Early stopping).
                s[stop_key("gap", name)] = None if (sp is None or stopped) else best["psnr"] - sp
            s[stop_key("decided", name)] = self.decided.get(name)
        s[vocab.STOPPED_BY] = self.ended_by if stopped else None
        if self.restored is not None:
            self.sink.artifact(self.restored[0], vocab.RESTORED, self.restored[1])
        return s


def reported_names(params: dict) -> tuple[list[str], list[str]]:
    """(per-step metric names, summary keys) a DIP run with `params` (validated, dumped)
    reports, for the checks a sweep makes before anything runs (an ASHA or Optuna `metric` must
    be one of them). Kept beside `Recorder.measure` and `Recorder.summary`, which write them."""
    holes = params.get("task") == "inpaint" or params.get("mask") is not None
    dets = list(params.get("detectors") or [])
    step = ["loss", "psnr", "ssim", "psnr_target", "psnr_ema"]
    step += ["psnr_hole", "psnr_known"] if holes else []
    step += [f"det_{d}" for d in dets]
    summary = ["input_psnr", "input_ssim", "final_psnr", "final_ssim", "final_loss", "best_psnr", "best_step",
               "ssim_at_best", "best_psnr_ema", "iterations_done", "iters_per_s", "wall_s", "n_params"]
    summary += ["input_psnr_hole", "final_psnr_hole", "final_psnr_known", "best_psnr_hole"] if holes else []
    summary += [f"stop_{k}_{d}" for d in dets for k in ("step", "psnr", "ssim", "gap", "decided")]
    return step, summary
