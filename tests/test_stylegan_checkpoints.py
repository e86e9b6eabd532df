"""Checkpoint loaders: NVIDIA persistence pickles (safely), rosinality .pt, priorlab's format, generate."""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tasks.stylegan import checkpoints as ck
from tasks.stylegan.networks import Generator
from tasks.stylegan.nvidia_pickle import UnsafePickleError


@pytest.fixture(scope="module")
def G() -> Generator:
    G = ck.load_generator("random:16?seed=3&z_dim=16&w_dim=16&channel_base=256&channel_max=16&mapping_layers=3")
    with torch.no_grad():  # make every tensor matter: noise strengths differ per layer
        for i, (name, p) in enumerate(G.named_parameters()):
            if name.endswith("noise_strength"):
                p.fill_(0.05 * (i % 5 + 1))
    return G


# --- a pickle in NVIDIA's persistence layout, written with stand-in classes -------------------


@pytest.fixture()
def fake_nvidia(monkeypatch, tmp_path):
    """Registers `torch_utils.persistence` and `dnnlib.util` stand-ins; returns a pickle writer."""
    persistence = types.ModuleType("torch_utils.persistence")
    marker = tmp_path / "module_src_ran"

    def _reconstruct_persistent_obj(meta):  # what NVIDIA's hook would be called with
        raise AssertionError("the writer side never unpickles")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class Persisted:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    dnnlib_util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", dnnlib_util)
    module_src = f"open({str(marker)!r}, 'w').write('executed')\n"

    def persist(module: torch.nn.Module, init_kwargs=None):
        state = {
            "training": False,
            "_parameters": OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                                       for k, v in module._parameters.items()),
            "_buffers": OrderedDict((k, v.clone()) for k, v in module._buffers.items()),
            "_non_persistent_buffers_set": set(),
            "_forward_hooks": OrderedDict(),
            "_modules": OrderedDict((k, persist(m)) for k, m in module._modules.items()),
            "_init_args": (),
            "_init_kwargs": EasyDict(init_kwargs or {}),
        }
        for k in ("activation", "conv_clamp", "use_noise", "num_layers", "z_dim", "c_dim", "w_dim",
                  "img_resolution", "img_channels", "resolution", "up", "in_channels"):
            if k in module.__dict__:
                state[k] = module.__dict__[k]
        for k in ("weight_gain", "bias_gain"):  # NVIDIA stores these as numpy float64
            if k in module.__dict__:
                state[k] = np.float64(module.__dict__[k])
        meta = dict(type="class", version=6, module_src=module_src, class_name=type(module).__name__, state=state)
        return Persisted(meta)

    def write(path, G, extra=None):
        cfg = G.cfg
        init = dict(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=3,
                    mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers),
                    synthesis_kwargs=EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                              num_fp16_res=0, conv_clamp=None, architecture="skip"))
        data = {"G": persist(G, init), "G_ema": persist(G, init), "D": persist(torch.nn.Linear(2, 2)),
                "augment_pipe": None, "training_set_kwargs": EasyDict(path="faces.zip", resolution=16),
                "progress": EasyDict(cur_nimg=np.int64(1000), stats=np.arange(3.0))}  # numpy scalars, arrays
        data.update(extra or {})
        with open(path, "wb") as f:
            pickle.dump(data, f)
        return path

    write.marker = marker
    write.persisted = Persisted
    return write


def test_nvidia_pickle_loads_same_tensors_without_running_module_src(fake_nvidia, tmp_path, G):
    path = fake_nvidia(tmp_path / "network-snapshot.pkl", G)
    loaded = ck.load_generator(str(path))
    assert not fake_nvidia.marker.exists()  # module_src was never executed
    want, got = G.state_dict(), loaded.state_dict()
    assert set(want) == set(got)
    for k in want:
        assert torch.equal(want[k], got[k]), k
    assert loaded.cfg.channel_base == G.cfg.channel_base and loaded.cfg.mapping_layers == 3
    z = torch.randn(2, G.z_dim)
    assert torch.allclose(G(z, truncation_psi=0.7), loaded(z, truncation_psi=0.7), atol=1e-6)
    g = ck.load_generator(f"{path}#G")
    assert torch.equal(g.mapping.fc0.weight, G.mapping.fc0.weight)
    with pytest.raises(ValueError, match="no network 'G_missing'"):
        ck.load_generator(f"{path}#G_missing")


class Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("func", [os.system, eval, exec])
def test_pickle_with_disallowed_global_is_refused_before_running(fake_nvidia, tmp_path, G, func):
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    # Hidden after legitimate content, inside a persisted module's state.
    G_meta = fake_nvidia.persisted(dict(type="class", version=6, module_src="", class_name="Generator",
                                        state={"_parameters": OrderedDict(), "evil": Evil(func, payload)}))
    path = fake_nvidia(tmp_path / "evil.pkl", G, extra={"G_ema": G_meta})
    with pytest.raises(UnsafePickleError, match="refusing global"):
        ck.load_generator(str(path))
    assert not marker.exists()


def test_top_level_evil_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil(os.system, f"touch {marker}")))
    with pytest.raises(UnsafePickleError):
        ck.load_generator(str(path))
    assert not marker.exists()


# --- rosinality -------------------------------------------------------------------------------


def _ros_upfirdn(x, k, up, pad0, pad1):
    """rosinality's upfirdn2d (native path), written from their op's definition."""
    n, c, h, w = x.shape
    if up > 1:
        y = torch.zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    kernel = torch.flip(k, [0, 1]).reshape(1, 1, *k.shape).repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)


def rosinality_forward(sd, z, truncation=1.0, latent_avg=None):
    """An independent forward in rosinality's formulation (EqualLinear, ModulatedConv2d with
    conv_transpose2d + Blur, FusedLeakyReLU, ToRGB with Upsample), constant noise buffers."""
    lrelu = lambda x, b: F.leaky_relu(x + b.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * math.sqrt(2)
    x = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        wgt = sd[f"style.{i}.weight"]
        x = lrelu(F.linear(x, wgt * (0.01 / math.sqrt(wgt.shape[1]))), sd[f"style.{i}.bias"] * 0.01)
        i += 1
    if truncation < 1:
        x = latent_avg + truncation * (x - latent_avg)
    blur = torch.tensor([1.0, 3, 3, 1])
    blur = torch.outer(blur, blur)
    blur = blur / blur.sum() * 4

    def modconv(inp, p, style, demod=True, upsample=False):
        wgt = sd[p + ".weight"]  # (1, O, I, k, k)
        b, cin = inp.shape[:2]
        s = F.linear(style, sd[p + ".modulation.weight"] / math.sqrt(style.shape[1]), sd[p + ".modulation.bias"])
        weight = wgt / math.sqrt(cin * wgt.shape[-1] ** 2) * s.view(b, 1, cin, 1, 1)
        if demod:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, -1, 1, 1, 1)
        o, k = weight.shape[1], weight.shape[-1]
        if upsample:
            weight = weight.transpose(1, 2).reshape(b * cin, o, k, k)
            out = F.conv_transpose2d(inp.view(1, b * cin, *inp.shape[2:]), weight, stride=2, groups=b)
            out = out.view(b, o, *out.shape[2:])
            return _ros_upfirdn(out, blur, 1, 1, 1)
        out = F.conv2d(inp.view(1, b * cin, *inp.shape[2:]), weight.view(b * o, cin, k, k), padding=k // 2, groups=b)
        return out.view(b, o, *out.shape[2:])

    def styled(inp, p, style, noise, upsample=False):
        out = modconv(inp, p + ".conv", style, upsample=upsample)
        out = out + sd[p + ".noise.weight"] * noise
        return lrelu(out, sd[p + ".activate.bias"])

    def to_rgb(inp, p, style, skip=None):
        out = modconv(inp, p + ".conv", style, demod=False) + sd[p + ".bias"]
        if skip is not None:
            out = out + _ros_upfirdn(skip, blur, 2, 2, 1)
        return out

    out = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    out = styled(out, "conv1", x, sd["noises.noise_0"])
    skip = to_rgb(out, "to_rgb1", x)
    j = 0
    while f"to_rgbs.{j}.bias" in sd:
        out = styled(out, f"convs.{2 * j}", x, sd[f"noises.noise_{2 * j + 1}"], upsample=True)
        out = styled(out, f"convs.{2 * j + 1}", x, sd[f"noises.noise_{2 * j + 2}"])
        skip = to_rgb(out, f"to_rgbs.{j}", x, skip)
        j += 1
    return skip


def test_rosinality_checkpoint_loads_and_matches_reference_forward(tmp_path, G):
    sd = ck.to_rosinality(G)
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": sd, "latent_avg": G.mapping.w_avg.clone(), "args": argparse.Namespace(size=16)}, path)
    loaded = ck.load_generator(str(path))
    z = torch.randn(3, G.z_dim)
    ours = loaded(z, truncation_psi=0.6)
    assert torch.allclose(ours, G(z, truncation_psi=0.6), atol=1e-6)  # same images after conversion
    ref = rosinality_forward(sd, z, truncation=0.6, latent_avg=G.mapping.w_avg)
    assert torch.allclose(ours, ref, atol=1e-5), float((ours - ref).abs().max())


def test_rosinality_without_latent_avg_estimates_it(tmp_path, G):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": ck.to_rosinality(G)}, path)
    loaded = ck.load_generator(str(path))
    assert torch.allclose(loaded.mapping.w_avg, G.mapping.w_avg, atol=0.2)


# --- priorlab's format, convert, generate -----------------------------------------------------


def test_priorlab_format_roundtrip_and_convert(tmp_path, fake_nvidia, G):
    p = ck.save_generator(G, tmp_path / "g.pt")
    loaded = ck.load_generator(str(p))
    assert loaded.cfg == G.cfg
    z = torch.randn(2, G.z_dim)
    assert torch.equal(loaded(z), G(z))
    pkl = fake_nvidia(tmp_path / "n.pkl", G)
    out = ck.convert(str(pkl), tmp_path / "converted.pt")
    assert torch.equal(ck.load_generator(str(out))(z), G(z))
    record = torch.load(out, weights_only=True)
    assert record["format"] == ck.FORMAT and record["version"] == ck.FORMAT_VERSION
    record["version"] = 99
    torch.save(record, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="newer"):
        ck.load_generator(str(tmp_path / "future.pt"))
    with pytest.raises(ValueError, match="neither 'random:RES'"):
        ck.load_generator(str(tmp_path / "missing.pt"))


def test_generate_draws_nvidia_z_and_writes_raw(tmp_path, G):
    spec = str(ck.save_generator(G, tmp_path / "g.pt"))
    paths = ck.generate(spec, seeds=[0, 7], truncation=0.8, noise_mode="const", out_dir=tmp_path / "out", raw=True,
                        device="cpu")
    assert [p.name for p in paths] == ["seed0000.png", "seed0007.png", "raw.npy"]
    raw = np.load(tmp_path / "out" / "raw.npy")
    assert raw.shape == (2, 3, 16, 16) and raw.dtype == np.float32
    z7 = np.random.RandomState(7).randn(1, G.z_dim)
    assert np.array_equal(ck.nvidia_z(7, G.z_dim), z7)
    want = G(torch.from_numpy(z7), truncation_psi=0.8)[0].numpy()
    assert np.allclose(raw[1], want, atol=1e-6)
    png = np.asarray(Image.open(tmp_path / "out" / "seed0007.png"))
    expect = np.clip(want.transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert png.shape == (16, 16, 3) and np.array_equal(png, expect)
