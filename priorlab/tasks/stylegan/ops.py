"""The low-level StyleGAN2 operations in plain PyTorch (no custom CUDA kernels).

Semantics follow NVIDIA's stylegan2-ada-pytorch reference ops (`upfirdn2d`, `bias_act`,
`conv2d_resample`, `modulated_conv2d`) on their pure-PyTorch paths, in float32, so that a
generator with the same weights gives the same pixels to float tolerance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # NVIDIA's `def_gain` for lrelu: keeps the signal's magnitude


def setup_filter(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """A 1-D list of taps -> the normalised 2-D FIR filter `(K, K)` (outer product / sum)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)  # (K, K)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (x0, x1, y0, y1), convolve with `f`, per channel.

    x: (N, C, H, W); f: (K, K). Returns (N, C, H*up + y0 + y1 - K + 1, W*up + x0 + x1 - K + 1).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])  # zeros after each pixel
        x = x.reshape(n, c, h * up, w * up)  # (N, C, H*up, W*up)
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # True convolution (flip the filter; conv2d correlates). The [1,3,3,1] filter is symmetric.
    k = (f * gain).flip([0, 1]).to(x.dtype)
    k = k[None, None].expand(c, 1, *f.shape)  # (C, 1, K, K) depthwise
    return F.conv2d(x, k, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """FIR-filtered upsampling that multiplies the size by `up`: (N, C, H, W) -> (N, C, H*up, W*up)."""
    k = f.shape[-1]
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, pad=(p0, p1, p0, p1), gain=up * up)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation with its default gain, then clamp."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    elif activation == "relu":
        x = F.relu(x) * (LRELU_GAIN * gain)
    elif activation == "linear":
        if gain != 1:
            x = x * gain
    else:
        raise ValueError(f"activation: {activation!r} is not supported (allowed: linear, lrelu, relu)")
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square: x (N, D) -> (N, D)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, noise: torch.Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, fused: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated (and demodulated) convolution.

    x: (N, I, H, W); weight: (O, I, k, k); styles: (N, I); noise broadcastable to the output.
    up=1: 'same' convolution (correlation, like `F.conv2d`).
    up=2: transposed stride-2 convolution followed by the FIR filter (output (N, O, 2H, 2W)).
    fused=True runs one grouped convolution with per-sample weights (NVIDIA's inference path);
    fused=False scales activations before and after a shared convolution (same result).
    """
    n = x.shape[0]
    o, i, kh, kw = weight.shape
    dcoefs = None
    wts = None
    if demodulate or fused:
        wts = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # (N, O, I, k, k)
    if demodulate:
        dcoefs = (wts.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (N, O)

    if not fused:
        x = x * styles.to(x.dtype).reshape(n, i, 1, 1)
        x = _conv(x, weight.to(x.dtype), up=up, padding=padding, f=resample_filter, groups=1)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, o, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    if dcoefs is not None:
        wts = wts * dcoefs.reshape(n, o, 1, 1, 1)
    h, w = x.shape[2:]
    x = x.reshape(1, n * i, h, w)  # (1, N*I, H, W): one group per sample
    x = _conv(x, wts.reshape(n * o, i, kh, kw).to(x.dtype), up=up, padding=padding, f=resample_filter, groups=n)
    x = x.reshape(n, o, *x.shape[2:])  # (N, O, H', W')
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def _conv(x: torch.Tensor, w: torch.Tensor, *, up: int, padding: int, f: torch.Tensor | None,
          groups: int) -> torch.Tensor:
    """Grouped convolution, optionally 2x upsampling (NVIDIA `conv2d_resample` with flip_weight=(up == 1))."""
    if up == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    assert f is not None, "upsampling needs a resample filter"
    og, ig, kh, kw = w.shape  # (groups*O, I, k, k)
    # conv_transpose2d wants (groups*I, O, k, k): swap in/out within each group.
    wt = w.reshape(groups, og // groups, ig, kh, kw).transpose(1, 2).reshape(groups * ig, og // groups, kh, kw)
    x = F.conv_transpose2d(x, wt, stride=up, groups=groups)  # (N, O, 2H+k-2, 2W+k-2)
    fk = f.shape[-1]
    # The pads NVIDIA's conv2d_resample derives for up=2 (k=3, 4-tap filter -> 1 on each side).
    p0 = padding + (fk + up - 1) // 2 - (kw - 1)
    p1 = padding + (fk - up) // 2 - (kw - up)
    return upfirdn2d(x, f, pad=(p0, p1, p0, p1), gain=up * up)
