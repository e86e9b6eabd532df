"""An example architecture plug-in: a small U-Net with a skip connection at every scale.

The seed report's own suggestion for its encoder-decoders (which have none). Use it as

    arch: "unet:unet"        # with configs/examples on PYTHONPATH (see unet_vs_skip.yaml)

A builder takes (depth, width, in_channels) and returns a module mapping
(N, in_channels, H, W) to (N, 3, H, W); H and W are divisible by 2**depth.
"""

import torch
from torch import nn


def block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convs with BatchNorm + LeakyReLU, reflection padded like DIP's nets."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
    )


class UNet(nn.Module):
    def __init__(self, depth: int, width: int, in_channels: int):
        super().__init__()
        chans = [width * 2**min(i, 3) for i in range(depth + 1)]  # doubling, capped at 8x width
        self.inc = block(in_channels, chans[0])
        self.downs = nn.ModuleList(block(chans[i], chans[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(block(chans[i + 1] + chans[i], chans[i]) for i in range(depth))
        self.out = nn.Sequential(nn.Conv2d(chans[0], 3, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]  # (N, width, H, W)
        for down in self.downs:
            skips.append(down(nn.functional.avg_pool2d(skips[-1], 2)))  # (N, c_i, H/2^i, W/2^i)
        h = skips.pop()
        for up in reversed(self.ups):
            h = nn.functional.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = up(torch.cat([h, skips.pop()], dim=1))  # the skip connection at this scale
        return self.out(h)  # (N, 3, H, W)


def unet(depth: int, width: int, in_channels: int) -> nn.Module:
    return UNet(depth, width, in_channels)
