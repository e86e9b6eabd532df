"""NVIDIA stylegan2-ada-pytorch pickles: the persisted `Generator` read (by `nvidia_pickle`'s
restricted unpickler, so no code in the file runs) into priorlab's generator."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .. import nvidia_pickle as nv
from ..networks import Generator, GeneratorConfig
from ..nvidia_pickle import CheckpointError, short_repr
from .build import build_generator, estimate_w_avg, params_limit


def load_nvidia(path: str | Path, key: str = "G_ema") -> Generator:
    data = nv.load_pickle(path)
    if not isinstance(data, dict) or key not in data:
        keys = [short_repr(k) for k in list(data)[:10]] if isinstance(data, dict) else short_repr(data)
        raise CheckpointError(f"{path}: no network {key!r} in the pickle (found {keys})")
    meta = data[key]
    if not isinstance(meta, nv.PersistentMeta):
        raise CheckpointError(f"{path}: {key!r} is not a persisted NVIDIA network")
    cfg = nvidia_config(meta)
    sd = nv.flatten_state(meta)
    limit = params_limit(Path(path))
    if "mapping.w_avg" not in sd:
        G = build_generator(cfg, {**sd, "mapping.w_avg": torch.zeros(cfg.w_dim)}, max_params=limit)
        estimate_w_avg(G)
        return G
    return build_generator(cfg, sd, max_params=limit)


def nvidia_config(meta: nv.PersistentMeta) -> GeneratorConfig:
    """Config from the persisted Generator: its init kwargs plus attributes of its submodules."""
    if meta.get("class_name") != "Generator":
        raise CheckpointError(f"expected an NVIDIA Generator, found class {short_repr(meta.get('class_name'))}")
    kwargs = _dict(nv.plain(nv.attr(meta, "_init_kwargs") or {}), "_init_kwargs")
    syn_kwargs = _dict(kwargs.get("synthesis_kwargs") or {}, "synthesis_kwargs")
    map_kwargs = _dict(kwargs.get("mapping_kwargs") or {}, "mapping_kwargs")
    synthesis = nv.submodule(meta, "synthesis")
    if "b4" not in (synthesis["state"].get("_modules") or {}):
        raise CheckpointError("unsupported generator: the synthesis network has no StyleGAN2 'b4' block "
                              "(StyleGAN3 and other architectures are not supported)")
    arch = syn_kwargs.get("architecture", "skip")
    if arch != "skip":
        raise CheckpointError(f"unsupported synthesis architecture {short_repr(arch)} "
                              f"(supported: skip, as in config-f)")
    taps = syn_kwargs.get("resample_filter", [1, 3, 3, 1])
    if not isinstance(taps, list) or not 1 <= len(taps) <= 16 or not all(
            type(t) in (int, float) and math.isfinite(t) for t in taps):
        raise CheckpointError(f"resample_filter: expected 1 to 16 numbers, found {short_repr(taps)}")
    activation = nv.attr(nv.submodule(meta, "mapping.fc0"), "activation", "lrelu")
    if not isinstance(activation, str):
        raise CheckpointError(f"mapping activation: expected a name, found {short_repr(activation)}")
    mapping = nv.submodule(meta, "mapping")
    fc0 = nv.submodule(meta, "mapping.fc0")
    layer = nv.submodule(meta, "synthesis.b4.conv1")
    num_layers = int(nv.plain(nv.attr(mapping, "num_layers", map_kwargs.get("num_layers", 8))))
    c_dim = int(nv.plain(nv.attr(meta, "c_dim", kwargs.get("c_dim", 0))))
    hidden = fc0["state"]["_parameters"]["weight"].shape[0] if num_layers > 1 else None
    embed = None
    if c_dim > 0:
        embed = nv.submodule(meta, "mapping.embed")["state"]["_parameters"]["weight"].shape[0]
    return GeneratorConfig(
        img_resolution=int(nv.plain(nv.attr(meta, "img_resolution", kwargs.get("img_resolution")))),
        z_dim=int(nv.plain(nv.attr(meta, "z_dim", kwargs.get("z_dim")))),
        w_dim=int(nv.plain(nv.attr(meta, "w_dim", kwargs.get("w_dim")))),
        c_dim=c_dim,
        img_channels=int(nv.plain(nv.attr(meta, "img_channels", kwargs.get("img_channels", 3)))),
        channel_base=int(syn_kwargs.get("channel_base", 32768)),
        channel_max=int(syn_kwargs.get("channel_max", 512)),
        mapping_layers=num_layers,
        mapping_lr_multiplier=float(nv.plain(nv.attr(fc0, "bias_gain", map_kwargs.get("lr_multiplier", 0.01)))),
        mapping_layer_features=hidden,
        mapping_embed_features=embed,
        mapping_activation=activation,
        conv_clamp=_optional_float(nv.plain(nv.attr(layer, "conv_clamp", syn_kwargs.get("conv_clamp"))), "conv_clamp"),
        use_noise=bool(nv.attr(layer, "use_noise", True)),
        resample_filter=list(taps),
    )


def _dict(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"{what}: expected a dict, found {short_repr(value)}")
    return value


def _optional_float(value: object, what: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CheckpointError(f"{what}: expected a number or None, found {short_repr(value)}")
    return float(value)
