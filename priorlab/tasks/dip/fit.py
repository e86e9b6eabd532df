"""The Deep Image Prior fit: a randomly initialised network, fed fixed noise, is fitted to the
corrupted image; early in training it reproduces the image before the corruption.

Step s (1..iterations) is the s-th forward/backward/Adam update; its metrics describe the
output of that forward pass (DIP's own convention, no extra forward). Metrics and pictures
use the output clamped to [0, 1] (the report's head is unbounded).

Metrics at logging steps (every `log_every`, each snapshot step, and the last step):
    loss         the training loss
    psnr, ssim   output vs the clean image
    psnr_target  output vs the corrupted target, over the pixels the loss sees
    psnr_ema     an exponential moving average (0.99) of the outputs vs the clean image
    psnr_hole, psnr_known   inpainting: psnr inside / outside the hole
Artifacts: "clean" (when the run has a reference), "corrupted" (and "mask" when inpainting)
at step 0, "output" at each snapshot step, "restored" (the run's answer: the output where its
`stop` detector stops, else the last one) at that step.

With no clean reference (`corrupted` without `image`, `reference: none`) nothing that needs
the clean image is measured: no psnr/ssim metrics, no best_*/final_psnr/input_* summary keys,
no stop_psnr/stop_gap; the detectors still decide, and `restored` is the answer.

Summary: input_psnr, input_ssim, status ("done" | "diverged", then diverged_at), final_psnr,
final_ssim, final_loss, best_psnr, best_step, ssim_at_best (best over logging steps),
best_psnr_ema, iterations_done, iters_per_s (the loop, logging included), wall_s (the whole
run), n_params, device; inpainting adds input_psnr_hole, final_psnr_hole, best_psnr_hole,
final_psnr_known.

The GPU is synced only at logging steps: a NaN/inf loss sets a flag on the device, noticed
at the next logging step, which ends the run with status "diverged".

Early-stopping detectors (`detectors`, see tasks.dip.detectors) each record where they would
stop, without changing the fit: metrics det_<d> (the detector's statistic), summary
stop_step_<d>, stop_psnr_<d>, stop_ssim_<d>, stop_gap_<d> (best_psnr - stop_psnr_<d>) and
stopped_by. With `stop`, that detector ends the run at the logging step where it decides
(iterations_done says where). The bookkeeping lives in tasks.dip.record.Recorder, shared with
packed fits.
"""

from __future__ import annotations

import time

import torch

from priorlab.tasks.sink import Sink
from priorlab.tasks.dip import losses
from priorlab.tasks.dip.member import INPUT_SCALE, input_noise  # noqa: F401  (re-exported)
from priorlab.tasks.dip.member import autocast, build_network, pick_device, setup
from priorlab.tasks.dip.params import DipParams
from priorlab.tasks.dip.record import EMA_DECAY  # noqa: F401  (re-exported)


def compiled(model: torch.nn.Module, cuda: bool) -> torch.nn.Module:
    """torch.compile for the fixed-shape DIP step: small DIP networks are bound by kernel launches
    on a GPU, which CUDA graphs (mode reduce-overhead) remove; on the CPU, inductor's C++ kernels.
    The shapes never change within a run, so it compiles once (`dynamic=False`)."""
    return torch.compile(model, mode="reduce-overhead" if cuda else None, dynamic=False)


def run(params: DipParams, sink: Sink) -> dict:
    """Fit one DIP and report through `sink`; returns the summary (see module doc)."""
    t_start = time.perf_counter()
    p = params
    device = pick_device(p.device)
    cuda = device.type == "cuda"

    memory_format = torch.channels_last if (cuda and p.channels_last) else torch.contiguous_format
    m = setup(p, sink, device, memory_format)  # data, input noise, loss pixels, Recorder
    height, width = m.target_shape
    model = build_network(p).to(device, memory_format=memory_format)
    noise = m.noise.to(device, memory_format=memory_format)  # (1, C, H', W')
    optimizer = torch.optim.Adam(model.parameters(), lr=p.lr)
    graphs = p.compile and cuda  # CUDA graphs replay into the same output buffer every step
    forward = compiled(model, cuda) if p.compile else model
    loss_fn = losses.get(p.loss)  # looked up per run, so tests can patch the table
    amp = autocast(device, p.amp)
    reg_gen, rec = m.reg_gen, m.rec

    model.train()
    t_loop = time.perf_counter()
    for step in range(1, p.iterations + 1):
        x = noise
        if reg_gen is not None:
            x = noise + p.reg_noise_std * torch.randn(noise.shape, generator=reg_gen, device=device)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with amp:
            out = forward(x)[..., :height, :width]  # (1, 3, H, W): the canvas cropped to the image
        out = out.float()
        if graphs:
            out = out.clone()  # the recorder and detectors keep outputs past the next replay
        loss = loss_fn(m.pixels(out), m.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        rec.observe(step, out, loss)
        if rec.is_log_step(step) and rec.log(step, out, loss):  # the one sync per logging step
            break
    t_end = time.perf_counter()

    summary = rec.summary(
        loop_s=t_end - t_loop,
        wall_s=t_end - t_start,
        n_params=sum(q.numel() for q in model.parameters()),
        device=str(device),
    )
    return summary
