"""Packed DIP: K same-shaped fits trained together as one batched model.

A seed grid is many small networks of the same shape (arch, depth, width, head, input depth,
size, iterations, logging steps). Fitting them one after another pays every kernel launch,
every Python dispatch and every small, badly-parallelised convolution K times. Here the K
members are fitted in one loop as one batched model, each member keeping its own mathematics.

How the batch is built
    Each member's network is built and initialised exactly as `fit.run` builds it
    (`init_weights_` from the member's own seeded generator), then the K parameter sets are
    stacked into one `(K, ...)` tensor per parameter. The forward pass is
    `torch.func.vmap(functional_call(base, params, x))` over a weightless ("meta") copy of the
    network: vmap turns each convolution into one grouped convolution whose K groups are the
    K members, and every other layer into one batched call. BatchNorm normalises per channel
    with the statistics of its own input, so it stays per member; its running statistics are
    switched off (`replace_all_batch_norm_modules_`), which changes nothing since a DIP fit is
    always in train mode and never reads them (the equivalence test checks the outputs).

The loss
    The loss of the pack is the sum of the members' own losses, each computed by the
    member's own loss function on its own pixels (denoise, or the known pixels of its own
    hole). The gradient of a sum w.r.t. member k's parameters is member k's gradient alone,
    so members with different losses, images, holes and sigmas share one backward pass.

Adam with a learning rate per member
    Adam is elementwise: m, v and the update lr * m_hat / (sqrt(v_hat) + eps) of an element
    depend only on that element's gradients. Stacked parameters therefore get exactly each
    member's own Adam. A per-member lr cannot be had by scaling each member's loss (Adam is
    invariant to the gradient's scale, up to eps), and torch's param groups cannot split one
    stacked tensor. So this module runs Adam's update itself (torch's single-tensor
    algorithm, the one `torch.optim.Adam` runs on CPU, operation for operation) with `lr`
    as a `(K, 1, ..., 1)` tensor that broadcasts over each member's slice. When all members
    share one lr the scalar path is used, bit-for-bit torch's own arithmetic.

Members that stop
    A member whose loss turns NaN/inf is noticed at the next logging step (the only GPU sync,
    as in `fit.run`) and finished as `diverged`; a member whose `stop` detector fires is
    finished there too. Either way it leaves the pack: its rows are cut out of the stacked
    parameters, Adam state and inputs, so the rest go on unchanged (their elements never met
    the NaNs: every operation is per member) and faster.

Reporting
    Each member has its own `priorlab.tasks.dip.record.Recorder`, the bookkeeping `fit.run` uses, so it
    reports through its own sink exactly what the unpacked run would (metrics and detector
    statistics at the same logging steps, the clean/corrupted/mask/output images, the same
    summary keys), plus `pack_id` and `pack_size`. All members' metrics of a logging step
    are copied to the host in one sync. `iters_per_s` is the pack's steps per second (each
    member advances one step per pack step) and `wall_s` the pack's time until that member
    ended. `peak_rss_mb` / `peak_gpu_mb` are the pack's (its one process's peak while the pack
    ran, `tasks/resources.py`), the same number for every member. A pack of one runs `fit.run`
    itself.

`channels_last` is ignored inside a pack (the stacked tensors are 5-D); `amp` and `device`
work as in `fit.run`.
"""

from __future__ import annotations

import copy
import time

import torch
from torch.func import functional_call, replace_all_batch_norm_modules_, vmap

from priorlab.tasks import resources
from priorlab.tasks.sink import Sink
from priorlab.tasks.dip import fit, losses
from priorlab.tasks.dip.inputs import NATIVE
from priorlab.tasks.dip.member import autocast, build_network, pick_device, setup
from priorlab.tasks.dip.params import DipParams

# What must be equal for runs to share one batched network and one loop. Everything else
# (seed, sigma, noise, loss, image, task, region, lr, reg_noise_std, ...) may differ.
SHAPE_FIELDS = (
    "arch", "depth", "width", "head", "input_depth", "size",
    "iterations", "log_every", "snapshots",
    "device", "amp", "channels_last",
)
NATIVE_SHAPE_FIELDS = ("image", "corrupted")
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which fit.run uses


def shape_key(params: DipParams | dict) -> tuple:
    """Runs with equal keys can be packed together. At `size: native` the image decides the
    shape, so only runs of the same file(s) pack."""
    get = params.get if isinstance(params, dict) else lambda k: getattr(params, k, None)
    fields = SHAPE_FIELDS + (NATIVE_SHAPE_FIELDS if get("size") == NATIVE else ())
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k in fields for v in [get(k)])


class StackedAdam:
    """torch.optim.Adam's single-tensor update on stacked `(K, ...)` parameters, with one
    learning rate per member (see the module doc for why not torch's own optimiser)."""

    def __init__(self, params: dict[str, torch.Tensor], lrs: list[float]):
        self.exp_avg = {k: torch.zeros_like(v) for k, v in params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in params.items()}
        self.lrs = list(lrs)
        self.step_count = 0

    def keep(self, idx: torch.Tensor, rows: list[int]) -> None:
        """Keep only the members at `idx` (rows: the same as a list)."""
        self.exp_avg = {k: v.index_select(0, idx) for k, v in self.exp_avg.items()}
        self.exp_avg_sq = {k: v.index_select(0, idx) for k, v in self.exp_avg_sq.items()}
        self.lrs = [self.lrs[i] for i in rows]

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor]) -> None:
        self.step_count += 1
        (b1, b2), n = BETAS, self.step_count
        bias_correction1 = 1 - b1**n
        bias_correction2_sqrt = (1 - b2**n) ** 0.5
        same_lr = all(lr == self.lrs[0] for lr in self.lrs)
        if not same_lr:
            any_p = next(iter(params.values()))
            sizes = [-lr / bias_correction1 for lr in self.lrs]
            step_sizes = torch.tensor(sizes, dtype=any_p.dtype, device=any_p.device)  # (K,)
        for k, param in params.items():
            grad, exp_avg, exp_avg_sq = param.grad, self.exp_avg[k], self.exp_avg_sq[k]
            exp_avg.lerp_(grad, 1 - b1)
            exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
            if same_lr:
                param.addcdiv_(exp_avg, denom, value=-self.lrs[0] / bias_correction1)
            else:  # the same product, (value * m) / denom, with value per member
                value = step_sizes.view(-1, *[1] * (param.dim() - 1))  # (K, 1, ..., 1)
                param.add_(exp_avg * value / denom)


def stack_networks(
    params: list[DipParams], device: torch.device | str = "cpu"
) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """Each member's network exactly as `fit.run` builds and seeds it, stacked.

    Returns the weightless architecture (on the meta device, BatchNorm without running
    statistics, in train mode) and `{name: (K, ...) leaf tensor}` of the members' parameters.
    """
    nets = [build_network(p) for p in params]
    named = [dict(net.named_parameters()) for net in nets]
    stacked = {n: torch.stack([d[n].detach() for d in named]).to(device).requires_grad_() for n in named[0]}
    base = copy.deepcopy(nets[0]).to("meta")  # the architecture only; the weights live in `stacked`
    replace_all_batch_norm_modules_(base)  # batch statistics always (train mode), no running stats
    return base.train(), stacked


def run_pack(params: list[DipParams], sinks: list[Sink], pack_id: str = "") -> list[dict]:
    """Fit every run of `params` together, reporting run i through `sinks[i]`; returns the
    summaries in the same order (see the module doc). All runs must share `shape_key`."""
    if len(params) != len(sinks) or not params:
        raise ValueError(f"run_pack: {len(params)} params for {len(sinks)} sinks (need one sink per run, at least one)")
    keys = {shape_key(p) for p in params}
    if len(keys) > 1:
        fields_differ = sorted({k for key in keys for k, v in key if v != dict(next(iter(keys)))[k]})
        raise ValueError(
            f"run_pack: runs differ in {', '.join(fields_differ)}; a pack needs equal {', '.join(SHAPE_FIELDS)}"
        )
    # One process fits every member, so each member's peak memory is the pack's (its own share
    # cannot be told apart); the summaries say so by their pack_size.
    with resources.measure() as used:
        summaries = _fit_pack(params, sinks, pack_id)
    return [resources.add_to(s, used) for s in summaries]


def _fit_pack(params: list[DipParams], sinks: list[Sink], pack_id: str) -> list[dict]:
    K = len(params)
    if K == 1:  # nothing to batch: the plain fit is the same computation, without vmap's reshapes
        summary = fit.run(params[0], sinks[0])
        return [{**summary, "pack_id": pack_id, "pack_size": 1}]

    t_start = time.perf_counter()
    p0 = params[0]
    device = pick_device(p0.device)
    members = [setup(p, s, device) for p, s in zip(params, sinks)]  # as fit.run sets up each run

    base, stacked = stack_networks(params, device)
    n_params = sum(q[0].numel() for q in stacked.values())
    forward = vmap(lambda ps, x: functional_call(base, ps, (x,)))

    height, width = members[0].target_shape
    noise = torch.stack([m.noise for m in members]).to(device)  # (K, 1, C, H', W'): each member's fixed input
    optimizer = StackedAdam(stacked, [p.lr for p in params])
    loss_fns = [losses.get(p.loss) for p in params]  # looked up per run (built-in or plug-in), as fit.run does
    amp = autocast(device, p0.amp)

    log_steps = members[0].rec.log_steps  # equal for all: logging steps are part of the shape
    active = list(range(K))  # indices into members/loss_fns of the members still fitting

    t_loop = time.perf_counter()
    for step in range(1, p0.iterations + 1):
        x = noise
        if any(members[i].reg_gen is not None for i in active):
            x = torch.stack([
                noise[j] + members[i].p.reg_noise_std
                * torch.randn(noise[j].shape, generator=members[i].reg_gen, device=device)
                if members[i].reg_gen is not None else noise[j]
                for j, i in enumerate(active)
            ])
        with amp:
            out = forward(stacked, x)[..., :height, :width]  # (A, 1, 3, H, W): canvases cropped to the image
        out = out.float()
        step_losses = [loss_fns[i](members[i].pixels(out[j]), members[i].target) for j, i in enumerate(active)]
        for q in stacked.values():
            q.grad = None
        torch.stack(step_losses).sum().backward()  # member j's gradient is that of its own loss alone
        optimizer.step(stacked)

        for j, i in enumerate(active):
            members[i].rec.observe(step, out[j], step_losses[j])  # EMA, NaN flag, detectors; no sync
        if step not in log_steps:
            continue
        recs = [members[i].rec for i in active]
        flat = [rec.measure(step, out[j], step_losses[j]) for j, rec in enumerate(recs)]
        numbers = torch.cat(flat).tolist()  # the one sync of this logging step, for all members
        now = time.perf_counter()
        keep: list[int] = []
        offset = 0
        for j, rec in enumerate(recs):
            ended = rec.record(step, numbers[offset : offset + len(flat[j])])
            offset += len(flat[j])
            if ended:  # diverged, or its `stop` detector fired
                members[active[j]].t_end = now
            else:
                keep.append(j)
        if len(keep) < len(active):
            if not keep:
                break
            rows = torch.tensor(keep, device=device)
            stacked = {n: q.detach().index_select(0, rows).requires_grad_() for n, q in stacked.items()}
            optimizer.keep(rows, keep)
            noise = noise.index_select(0, rows)
            active = [active[j] for j in keep]
    t_end = time.perf_counter()

    summaries = []
    for m in members:
        end = m.t_end or t_end
        summary = m.rec.summary(loop_s=end - t_loop, wall_s=end - t_start, n_params=n_params, device=str(device))
        summaries.append({**summary, "pack_id": pack_id, "pack_size": K})
    return summaries
