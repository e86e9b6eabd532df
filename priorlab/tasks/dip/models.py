"""The networks a Deep Image Prior fits: the report's two encoder-decoders and the DIP skip net.

    seed-double  the report's Architecture 1 (its Figure 5): two 3x3 convs per level
    seed-single  the report's Architecture 2 (Figures 3-4): one 3x3 conv per level
    skip         Ulyanov et al.'s reference `skip` network (models/skip.py in their code)

Every builder maps noise `(N, in_channels, H, W)` to an image `(N, 3, H, W)`, with H and W
divisible by 2**depth. The `head` is what follows the last 3-channel conv:

    report   BatchNorm + LeakyReLU, as the report's decoder ends: the output is unbounded
             (it is clamped to [0, 1] only for metrics and pictures). Default of seed-*.
    sigmoid  the DIP paper's head: output in (0, 1). Default of skip.
    linear   nothing: the raw conv output, unbounded.

An architecture may also be user code, `package.module:builder` (see `tasks/plugins.py`): a
builder `(depth, width, in_channels) -> nn.Module` mapping `(N, in_channels, H, W)` to
`(N, 3, H, W)`; it owns its head. `check_builder` validates one before a sweep starts.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from priorlab.tasks.plugins import is_plugin, resolve

ARCHS = ("seed-double", "seed-single", "skip")
HEADS = ("report", "sigmoid", "linear")
DEFAULT_HEAD = {"seed-double": "report", "seed-single": "report", "skip": "sigmoid"}


def head(kind: str, channels: int = 3) -> list[nn.Module]:
    if kind == "report":
        # nn.LeakyReLU()'s default slope 0.01 is what the report's code uses.
        return [nn.BatchNorm2d(channels), nn.LeakyReLU()]
    if kind == "sigmoid":
        return [nn.Sigmoid()]
    if kind == "linear":
        return []
    raise ValueError(f"head: {kind!r} is not one of {', '.join(HEADS)}")


# --- the report's encoder-decoders ------------------------------------------------------


def down(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    """One encoder level: halves H and W. (N, c_in, H, W) -> (N, c_out, H/2, W/2)."""
    # Architecture 1 puts a stride-1 conv before the stride-2 one, with no activation
    # between them; we keep that, since reproducing the report is the point.
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)] if convs == 2 else []
    first = c_out if convs == 2 else c_in
    layers += [nn.Conv2d(first, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU()]
    return nn.Sequential(*layers)


def up(c_in: int, c_out: int, convs: int, tail: list[nn.Module] | None = None) -> nn.Sequential:
    """One decoder level: doubles H and W. (N, c_in, H, W) -> (N, c_out, 2H, 2W)."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="bicubic"), nn.Conv2d(c_in, c_out, 3, padding=1)]
    if convs == 2:
        layers.append(nn.Conv2d(c_out, c_out, 3, padding=1))
    layers += tail if tail is not None else [nn.BatchNorm2d(c_out), nn.LeakyReLU()]
    return nn.Sequential(*layers)


class EncoderDecoder(nn.Module):
    """The report's ENCODER_DECODER: no skip connections, channels double per level."""

    def __init__(self, depth: int, width: int, in_channels: int, convs: int, head_kind: str):
        super().__init__()
        # e.g. depth 4, width 128: [in, 128, 256, 512, 1024] down, then back up to 3.
        chans = [in_channels] + [width * 2**i for i in range(depth)]
        self.encoder = nn.Sequential(*(down(chans[i], chans[i + 1], convs) for i in range(depth)))
        back = chans[::-1]
        back[-1] = 3
        self.decoder = nn.Sequential(
            *(
                up(back[i], back[i + 1], convs, head(head_kind) if i == depth - 1 else None)
                for i in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in, H, W) -> (N, width * 2**(depth-1), H / 2**depth, W / 2**depth) -> (N, 3, H, W)
        return self.decoder(self.encoder(x))


def seed_double(depth: int = 4, width: int = 128, in_channels: int = 32, head_kind: str = "report") -> nn.Module:
    return EncoderDecoder(depth, width, in_channels, convs=2, head_kind=head_kind)


def seed_single(depth: int = 4, width: int = 128, in_channels: int = 32, head_kind: str = "report") -> nn.Module:
    return EncoderDecoder(depth, width, in_channels, convs=1, head_kind=head_kind)


# --- the DIP paper's skip network -------------------------------------------------------


def cbr(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    """conv (reflection padded, as DIP pads) + BatchNorm + LeakyReLU(0.2)."""
    return [
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2, padding_mode="reflect"),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2),
    ]


class SkipLevel(nn.Module):
    """One scale: a 1x1 skip branch beside a deeper branch that goes down, inward, and up."""

    def __init__(self, c_in: int, width: int, skip: int, inner: nn.Module | None):
        super().__init__()
        self.skip = nn.Sequential(*cbr(c_in, skip, 1))
        deeper = cbr(c_in, width, 3, stride=2) + cbr(width, width, 3)
        if inner is not None:
            deeper.append(inner)
        deeper.append(nn.Upsample(scale_factor=2, mode="bilinear"))
        self.deeper = nn.Sequential(*deeper)
        # DIP normalises the concatenation before the 3x3 "up" conv, then adds a 1x1 conv.
        self.merge = nn.Sequential(nn.BatchNorm2d(skip + width), *cbr(skip + width, width, 3), *cbr(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, c_in, H, W) -> cat[(N, skip, H, W), (N, width, H, W)] -> (N, width, H, W)
        return self.merge(torch.cat([self.skip(x), self.deeper(x)], dim=1))


class Skip(nn.Module):
    def __init__(self, depth: int, width: int, in_channels: int, skip: int, head_kind: str):
        super().__init__()
        level = None
        for i in reversed(range(depth)):  # built inside out: the deepest scale first
            level = SkipLevel(in_channels if i == 0 else width, width, skip, level)
        self.levels = level
        self.out = nn.Sequential(nn.Conv2d(width, 3, 1), *head(head_kind))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.levels(x))  # (N, in, H, W) -> (N, width, H, W) -> (N, 3, H, W)


def skip(depth: int = 5, width: int = 128, in_channels: int = 32, head_kind: str = "sigmoid", skip_channels: int = 4) -> nn.Module:
    return Skip(depth, width, in_channels, skip_channels, head_kind)


# --- entry points -----------------------------------------------------------------------

BUILDERS = {"seed-double": seed_double, "seed-single": seed_single, "skip": skip}


def build_model(arch: str, depth: int, width: int, in_channels: int = 32, head: str | None = None) -> nn.Module:
    if is_plugin(arch):
        return resolve(arch)(depth=depth, width=width, in_channels=in_channels)
    if arch not in BUILDERS:
        raise ValueError(f"arch: {arch!r} is not one of {', '.join(ARCHS)}")
    return BUILDERS[arch](depth, width, in_channels, head or DEFAULT_HEAD[arch])


# A network larger than this cannot be fitted (its weights plus Adam's two moments are 12
# bytes each): refused when the parameters are validated, not found out of memory in a trial.
MAX_PARAMS = 500_000_000


@functools.lru_cache(maxsize=256)
def count_params(arch: str, depth: int, width: int, in_channels: int, head: str | None) -> int:
    """How many weights a built-in network of this shape has, counted on PyTorch's meta device
    (shapes only: no memory is allocated, whatever the size)."""
    with torch.device("meta"):
        model = build_model(arch, depth, width, in_channels, head)
    return sum(p.numel() for p in model.parameters())


def check_size(arch: str, depth: int, width: int, in_channels: int, head: str | None) -> None:
    """ValueError when a built-in network of this shape is too large to fit."""
    n = count_params(arch, depth, width, in_channels, head)
    if n > MAX_PARAMS:
        raise ValueError(f"width {width} with depth {depth} and input_depth {in_channels} makes {arch} a network of "
                         f"{n:.3g} weights (about {n * 12 / 2**30:.0f} GiB with Adam); at most {MAX_PARAMS:.0e} fit")


@functools.lru_cache(maxsize=64)
def check_builder(arch: str, depth: int, width: int, in_channels: int) -> None:
    """Build a plug-in architecture and run one tiny forward; ValueError naming what is wrong.

    Cached: a sweep validates thousands of trials with the same few network shapes.
    """
    side = 4 * 2**depth  # the smallest input whose deepest feature map is 4x4
    try:
        model = resolve(arch)(depth=depth, width=width, in_channels=in_channels)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"{arch!r}: the builder failed for depth={depth}, width={width}, "
                         f"in_channels={in_channels} ({type(e).__name__}: {e})") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"{arch!r}: the builder returned {type(model).__name__}, not a torch.nn.Module")
    x = torch.zeros(2, in_channels, side, side)  # (N, in, H, W); N=2 so BatchNorm can train
    try:
        with torch.no_grad():
            y = model(x)
    except Exception as e:
        raise ValueError(f"{arch!r}: forward of a (2, {in_channels}, {side}, {side}) input failed "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (2, 3, side, side):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{arch!r}: maps (2, {in_channels}, {side}, {side}) to {got}; "
                         f"expected (2, 3, {side}, {side})")


@torch.no_grad()
def init_weights_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's default conv init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from `generator`.

    nn.Conv2d draws from the global RNG when built; redrawing here makes the weights a
    function of the seed alone, identical on every device and in every process.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            bound = 1.0 / math.sqrt(m.weight[0].numel())
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
    return model
