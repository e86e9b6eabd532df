"""StyleGAN2 generator (config-f, 'skip' architecture) in plain PyTorch.

Module and parameter names are NVIDIA stylegan2-ada-pytorch's (`mapping.fc0.weight`,
`synthesis.b64.conv0.affine.bias`, `synthesis.b4.const`, `mapping.w_avg`, ...), so their
`G_ema.state_dict()` loads 1:1 with `strict=True`. Weights are stored unscaled and scaled at
run time (equalised learning rate), as in the reference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .ops import bias_act, modulated_conv2d, normalize_2nd_moment, setup_filter, upsample2d

NOISE_MODES = ("const", "random", "none")

# Upper bounds on what a config (often read from a checkpoint file) may declare. NVIDIA's largest
# published StyleGAN2 models are 1024 px with 8 mapping layers, and config-f's largest feature
# map (32 channels at 1024 px) is 2**25 elements; one image through such a generator takes about
# 1 GB on CPU (measured: 166 MB at 2**22, 476 MB at 2**24). Past these a generator is refused
# before anything is built, so a checkpoint cannot make `generate` run out of memory.
MAX_RESOLUTION = 4096
MAX_MAPPING_LAYERS = 32
MAX_FEATURE_MAP = 1 << 25  # channels * resolution**2 of the largest synthesis layer (128 MiB in float32)
MAX_LATENT = 4096  # z_dim, w_dim and mapping widths (NVIDIA's are 512): w_avg's estimate maps 4096 z at once


@dataclass
class GeneratorConfig:
    """Everything needed to build the network (saved next to the weights)."""

    img_resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    img_channels: int = 3
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    mapping_layer_features: int | None = None  # None: w_dim
    mapping_embed_features: int | None = None  # None: w_dim (conditional models only)
    mapping_activation: str = "lrelu"
    conv_clamp: float | None = None  # clamp synthesis activations to +-X (NVIDIA pickles often use 256)
    use_noise: bool = True
    resample_filter: list[float] = field(default_factory=lambda: [1, 3, 3, 1])

    def __post_init__(self) -> None:
        r = self.img_resolution
        if r < 4 or r & (r - 1) or r > MAX_RESOLUTION:
            raise ValueError(f"img_resolution: {r} is not allowed (must be 4 * 2^k up to {MAX_RESOLUTION}: "
                             f"4, 8, 16, ..., 1024, ...)")
        for name in ("z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers", "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)} is not allowed (must be >= 1)")
        for name in ("z_dim", "w_dim", "mapping_layer_features", "mapping_embed_features"):
            if (getattr(self, name) or 0) > MAX_LATENT:
                raise ValueError(f"{name}: {getattr(self, name)} is not allowed (at most {MAX_LATENT}; NVIDIA's is 512)")
        if self.mapping_layers > MAX_MAPPING_LAYERS:
            raise ValueError(f"mapping_layers: {self.mapping_layers} is not allowed (at most {MAX_MAPPING_LAYERS}; "
                             f"config-f has 8)")
        largest = max(self.channels(res) * res * res for res in self.block_resolutions)
        if largest > MAX_FEATURE_MAP:
            raise ValueError(f"channel_base/channel_max: {self.channel_base}/{self.channel_max} at {r} px make a "
                             f"feature map of {largest} elements (at most {MAX_FEATURE_MAP}, config-f's at 1024 px)")

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """One w per synthesis layer plus the last ToRGB: 2*log2(res) - 2."""
        return 2 * int(math.log2(self.img_resolution)) - 2

    def to_dict(self) -> dict:
        return asdict(self)


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate: weight (out, in) scaled by lr_multiplier / sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, *, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)  # (out, in)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))  # (out,)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, out)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, activation=self.activation)


class MappingNetwork(nn.Module):
    """z (N, z_dim) [+ c (N, c_dim)] -> w broadcast to (N, num_ws, w_dim), with truncation."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_ws = cfg.num_ws
        self.num_layers = cfg.mapping_layers
        embed = 0
        if cfg.c_dim > 0:
            embed = cfg.mapping_embed_features or cfg.w_dim
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        hidden = cfg.mapping_layer_features or cfg.w_dim
        features = [cfg.z_dim + embed] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        for idx in range(cfg.mapping_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1],
                                                          activation=cfg.mapping_activation,
                                                          lr_multiplier=cfg.mapping_lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))  # (w_dim,)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))  # (N, z_dim)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"c: this generator is conditional (c_dim={self.c_dim}); pass a label")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))  # (N, embed)
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)  # (N, w_dim) after the last layer
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # (N, num_ws, w_dim)
        return self.truncate(ws, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def truncate(self, ws: torch.Tensor, *, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi * (w - w_avg) on (N, w_dim) or (N, num_ws, w_dim); cutoff: only the first layers."""
        if truncation_psi == 1:
            return ws
        if truncation_cutoff is None or ws.ndim == 2:
            return self.w_avg.lerp(ws, truncation_psi)
        ws = ws.clone()
        ws[:, :truncation_cutoff] = self.w_avg.lerp(ws[:, :truncation_cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+2x upsampling), noise, bias, lrelu."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, conv_clamp: float | None = None, resample_filter: list[float]) -> None:
        super().__init__()
        self.resolution, self.up, self.use_noise, self.conv_clamp = resolution, up, use_noise, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))  # (4, 4)
        self.padding = 1
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))  # (O, I, 3, 3)
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))  # (R, R)
            self.noise_strength = nn.Parameter(torch.zeros([]))  # ()
        self.bias = nn.Parameter(torch.zeros(out_channels))  # (O,)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise_mode: str = "const",
                noise_generator: torch.Generator | None = None, fused: bool = True) -> torch.Tensor:
        # x: (N, I, R/up, R/up), w: (N, w_dim) -> (N, O, R, R)
        styles = self.affine(w)  # (N, I)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                generator=noise_generator) * self.noise_strength  # (N, 1, R, R)
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength  # (R, R)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused)
        return bias_act(x, self.bias, activation="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: features (N, C, R, R) -> image (N, 3, R, R)."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))  # (3, C, 1, 1)
        self.bias = nn.Parameter(torch.zeros(out_channels))  # (3,)
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # (N, C)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: [const | conv0 (up)] -> conv1 -> torgb, with the RGB skip upsampled and added."""

    def __init__(self, in_channels: int, out_channels: int, *, resolution: int, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter(cfg.resample_filter))  # (4, 4)
        kw = dict(w_dim=cfg.w_dim, resolution=resolution, use_noise=cfg.use_noise, conv_clamp=cfg.conv_clamp,
                  resample_filter=cfg.resample_filter)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))  # (C, 4, 4)
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **kw)
        self.torgb = ToRGBLayer(out_channels, cfg.img_channels, w_dim=cfg.w_dim, conv_clamp=cfg.conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, *, noise_mode: str,
                noise_generator: torch.Generator | None, fused: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # ws: (N, num_conv + 1, w_dim); x: (N, I, R/2, R/2) or None; img: (N, 3, R/2, R/2) or None
        kw = dict(noise_mode=noise_mode, noise_generator=noise_generator, fused=fused)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)  # (N, C, 4, 4)
            x = self.conv1(x, ws[:, 0], **kw)
        else:
            x = self.conv0(x, ws[:, 0], **kw)  # (N, C, R, R)
            x = self.conv1(x, ws[:, 1], **kw)
        y = self.torgb(x, ws[:, self.num_conv], fused=fused)  # (N, 3, R, R)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, 3, R, R), roughly in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.num_ws = cfg.w_dim, cfg.img_resolution, cfg.num_ws
        self.block_resolutions = cfg.block_resolutions
        for res in self.block_resolutions:
            in_ch = cfg.channels(res // 2) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(in_ch, cfg.channels(res), resolution=res, cfg=cfg))

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "const", noise_generator: torch.Generator | None = None,
                fused: bool | None = None) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode: {noise_mode!r} is not allowed (allowed: {', '.join(NOISE_MODES)})")
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).repeat(1, self.num_ws, 1)  # one w for every layer
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws: shape {tuple(ws.shape)} does not fit (N, {self.num_ws}, {self.w_dim})")
        if fused is None:  # one grouped conv is fastest for a single sample; shared convs for batches
            fused = ws.shape[0] == 1
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Each block's ToRGB shares its w with the next block's first conv.
            x, img = block(x, img, ws[:, w_idx: w_idx + block.num_conv + 1], noise_mode=noise_mode,
                           noise_generator=noise_generator, fused=fused)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """G(z) = synthesis(truncate(mapping(z))). Images come out roughly in [-1, 1]: see `to_unit`."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.num_ws = cfg.num_ws
        self.synthesis = SynthesisNetwork(cfg)
        self.mapping = MappingNetwork(cfg)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const",
                noise_generator: torch.Generator | None = None, fused: bool | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise_generator=noise_generator, fused=fused)

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device


def to_unit(img: torch.Tensor) -> torch.Tensor:
    """Generator output -> [0, 1], the mapping NVIDIA's generate.py uses before 8 bits (x*127.5+128)/255."""
    return (img * 127.5 + 128).clamp(0, 255) / 255.0
