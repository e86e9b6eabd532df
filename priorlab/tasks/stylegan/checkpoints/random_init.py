"""`random:RES[?key=value&...]`: a seeded, calibrated generator with no file behind it."""

from __future__ import annotations

from urllib.parse import parse_qsl

import torch

from ..networks import Generator, GeneratorConfig
from .build import W_AVG_SAMPLES

RANDOM_DEFAULTS = dict(seed=0, z_dim=64, w_dim=64, channel_base=2048, channel_max=64, mapping_layers=8,
                       noise_strength=0.1)


def random_generator(spec: str) -> Generator:
    """`random:RES[?seed=..&z_dim=..]`: seeded NVIDIA-style initialisation, calibrated for use.

    Weights ~ N(0, 1) as in NVIDIA's constructors; noise strengths set to `noise_strength`;
    ToRGB weights scaled so images have a standard deviation of about 0.5 (in [-1, 1] units);
    `w_avg` = the mean of mapping(z) over 4096 seeded z. Same spec, same weights.
    """
    body = spec[len("random:"):]
    res_text, _, query = body.partition("?")
    try:
        res = int(res_text)
    except ValueError:
        raise ValueError(f"generator: {spec!r}: resolution {res_text!r} is not an integer (e.g. random:32)") from None
    opts = dict(RANDOM_DEFAULTS)
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in RANDOM_DEFAULTS:
            raise ValueError(f"generator: {spec!r}: unknown option {key!r} (allowed: {', '.join(RANDOM_DEFAULTS)})")
        opts[key] = type(RANDOM_DEFAULTS[key])(value)
    cfg = GeneratorConfig(img_resolution=res, z_dim=opts["z_dim"], w_dim=opts["w_dim"],
                          channel_base=opts["channel_base"], channel_max=opts["channel_max"],
                          mapping_layers=opts["mapping_layers"])
    seed = int(opts["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(cfg).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(opts["noise_strength"])
        z = torch.randn(W_AVG_SAMPLES, cfg.z_dim, generator=g)  # (4096, z_dim)
        G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))
        img = G(z[:64], noise_mode="const")  # (64, 3, R, R)
        gain = 0.5 / float(img.std())
        for name, p in G.named_parameters():
            if ".torgb." in name and name.endswith("torgb.weight"):
                p.mul_(gain)
    return G
