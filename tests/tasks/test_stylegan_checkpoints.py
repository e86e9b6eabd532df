"""Checkpoint loaders: NVIDIA persistence pickles (safely), rosinality .pt, priorlab's format, generate."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from priorlab.tasks.stylegan import checkpoints as ck
from priorlab.cluster.cli_stylegan import convert, generate, nvidia_z  # the CLI's convert and generate
from priorlab.tasks.stylegan.networks import Generator, GeneratorConfig
from priorlab.tasks.stylegan import nvidia_pickle as nv
from priorlab.tasks.stylegan.nvidia_pickle import UnsafePickleError

CheckpointError = getattr(ck, "CheckpointError", ValueError)  # priorlab's one error class for unloadable files


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
    return nvidia_writer(monkeypatch.setitem, tmp_path / "module_src_ran")


def nvidia_writer(setitem, marker):
    """A writer of NVIDIA-layout pickles; `setitem(sys.modules, name, module)` installs the stand-ins."""
    persistence = types.ModuleType("torch_utils.persistence")

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
    setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    setitem(sys.modules, "torch_utils.persistence", persistence)
    setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    setitem(sys.modules, "dnnlib.util", dnnlib_util)
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

    def write(path, G, extra=None, init_extra=None, modules_extra=None):
        cfg = G.cfg
        init = dict(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=3,
                    mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers),
                    synthesis_kwargs=EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                              num_fp16_res=0, conv_clamp=None, architecture="skip"))
        init.update(init_extra or {})
        G_ema = persist(G, init)
        G_ema.meta["state"]["_modules"].update(modules_extra or {})
        data = {"G": persist(G, init), "G_ema": G_ema, "D": persist(torch.nn.Linear(2, 2)),
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


# --- hostile pickles, assembled opcode by opcode -----------------------------------------------
# Each of these reached code, state or memory through the old allow-list. The dangerous ones
# (segfault, exponential memory, a 40 TB allocation, changes to module globals) are loaded in a
# child process, which reports one JSON line per file; the test process itself never loads them.


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def op_long(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


PROTO2, MARK, TUPLE, TUPLE1, TUPLE2, EMPTY_TUPLE = b"\x80\x02", b"(", b"t", b"\x85", b"\x86", b")"
REDUCE, BUILD, NONE, EMPTY_DICT, SETITEM, STOP = b"R", b"b", b"N", b"}", b"s", b"."
NEWFALSE, NEWTRUE = b"\x89", b"\x88"


def legacy_storage_bytes(values: torch.Tensor) -> bytes:
    """What NVIDIA pickles hold per storage: a legacy `torch.save` of it."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(values.storage(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def op_tensor(size, stride, offset=0, values=torch.arange(4.0)) -> bytes:
    """`_rebuild_tensor_v2(_load_from_bytes(storage), offset, size, stride, False, OrderedDict())`."""
    shape = MARK + b"".join(op_int(n) for n in size) + TUPLE
    strides = MARK + b"".join(op_int(n) for n in stride) + TUPLE
    storage = op_global("torch.storage", "_load_from_bytes") + op_bytes(legacy_storage_bytes(values)) + TUPLE1 + REDUCE
    hooks = op_global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    return (op_global("torch._utils", "_rebuild_tensor_v2") + MARK + storage + op_int(offset) + shape + strides
            + NEWFALSE + hooks + TUPLE + REDUCE)


def nvidia_generator_pickle(init_kwargs_ops: bytes) -> bytes:
    """{'G_ema': _reconstruct_persistent_obj({'class_name': 'Generator', 'state': {'_init_kwargs': ...}})}"""
    state = EMPTY_DICT + op_str("_init_kwargs") + init_kwargs_ops + SETITEM
    meta = EMPTY_DICT + op_str("class_name") + op_str("Generator") + SETITEM + op_str("state") + state + SETITEM
    persisted = op_global("torch_utils.persistence", "_reconstruct_persistent_obj") + meta + TUPLE1 + REDUCE
    return PROTO2 + EMPTY_DICT + op_str("G_ema") + persisted + SETITEM + STOP


def reference_bomb(depth: int = 40) -> bytes:
    """A list holding the same list twice, `depth` levels deep: 2**depth leaves from ~600 bytes."""
    value: list = [0]
    for _ in range(depth):
        value = [value, value]
    body = pickle.dumps({"synthesis_kwargs": {"bomb": value}}, protocol=2)
    return body[2:-1]  # without PROTO and STOP: its memo indices are the only ones in the stream


HOSTILE = {
    # BUILD on an allowed class: old code did setattr(EasyDict, '__getattr__', ...) for the rest of the process.
    "build_on_class": PROTO2 + op_global("dnnlib.util", "EasyDict") + NONE + EMPTY_DICT + op_str("__getattr__")
    + op_global("torch._utils", "_rebuild_parameter") + SETITEM + TUPLE2 + BUILD + STOP,
    # BUILD on an allowed function: old code replaced _rebuild_parameter.__defaults__.
    "build_on_function": PROTO2 + op_global("torch._utils", "_rebuild_parameter") + NONE + EMPTY_DICT
    + op_str("__defaults__") + MARK + op_int(1) + op_int(2) + TUPLE + SETITEM + TUPLE2 + BUILD + STOP,
    # ~600 bytes; plain() walked it as a tree: 2**40 steps and memory until the machine gave out.
    "reference_bomb": nvidia_generator_pickle(reference_bomb()),
    # numpy.dtype + BUILD(flags=0) hides an object dtype; scalar() then turned 8 file bytes into a
    # PyObject* and REDUCE called it: a segfault, or code execution at a known address.
    "object_dtype_pointer": PROTO2 + op_global("numpy._core.multiarray", "scalar")
    + op_global("numpy", "dtype") + op_str("O8") + NEWFALSE + NEWTRUE + b"\x87" + REDUCE
    + MARK + op_int(3) + op_str("|") + NONE + NONE + NONE + op_int(-1) + op_int(-1) + op_int(0) + TUPLE + BUILD
    + op_bytes(b"\x41" * 8) + TUPLE2 + REDUCE + EMPTY_TUPLE + REDUCE + STOP,
}

CHILD = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore")
from priorlab.tasks.stylegan import checkpoints as ck, nvidia_pickle as nv

def snapshot():  # every allowed global's own attributes: a load must leave them as they were
    out = {}
    for key, obj in nv.ALLOWED.items():
        out[key] = (dict(getattr(obj, "__dict__", {})), getattr(obj, "__defaults__", None))
    return out

vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), resource.RLIM_INFINITY))  # at most 2 GB more
for path in sys.argv[1:]:
    before = snapshot()
    try:
        ck.load_generator(path)
        outcome, kind, message = "loaded", "", ""
    except Exception as e:
        outcome = "refused" if isinstance(e, getattr(ck, "CheckpointError", ())) else "other"
        kind, message = type(e).__name__, str(e)
    print(json.dumps(dict(path=path, outcome=outcome, kind=kind, message=message,
                          state_same=snapshot() == before)), flush=True)
"""


def load_in_child(paths, timeout=120) -> tuple[dict, int]:
    """Load each file in a fresh process (2 GB memory cap); {path: report}, the exit code."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True,
                              timeout=timeout, env=env)
        out, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out, code = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    reports = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            reports[r["path"]] = r
    return reports, code


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory, G):
    folder = tmp_path_factory.mktemp("hostile")
    names = list(HOSTILE)
    names[-1:-1] = ["huge_config", "module_bomb"]  # the segfaulting one stays last
    paths = {name: folder / f"{name}.pkl" for name in names}
    with pytest.MonkeyPatch.context() as mp:
        write = nvidia_writer(mp.setitem, folder / "never")
        # A valid generator whose config asks for channel_max 2**20: old code's Generator(cfg)
        # asked for 40 TB before looking at the tensors.
        syn = dict(channel_base=2 ** 40, channel_max=2 ** 20, num_fp16_res=0, conv_clamp=None, architecture="skip")
        write(paths["huge_config"], G, init_extra={"synthesis_kwargs": syn})
        # A valid generator plus one extra module that holds the same submodule twice, 40 levels
        # deep: old code's flatten_state walked 2**40 paths.
        chain = write.persisted(dict(class_name="Leaf", state={"_parameters": {"w": torch.zeros(1)}}))
        for _ in range(40):
            chain = write.persisted(dict(class_name="Pair", state={"_modules": {"a": chain, "b": chain}}))
        write(paths["module_bomb"], G, modules_extra={"extra": chain})
    for name, data in HOSTILE.items():
        paths[name].write_bytes(data)
    reports, code = load_in_child(paths.values())  # one child for all; the segfaulting one is last
    return {name: reports.get(str(p)) for name, p in paths.items()}, code, paths


@pytest.mark.parametrize("name, reason", [
    ("build_on_class", "state of a type"), ("build_on_function", "state of a function"),
    ("reference_bomb", "shared references"), ("object_dtype_pointer", "numpy dtype 'O8'"),
    ("huge_config", "feature map"), ("module_bomb", "appears twice")])
def test_hostile_pickle_is_refused_in_one_line_without_side_effects(hostile_reports, name, reason):
    reports, code, paths = hostile_reports
    report = reports[name]
    assert report is not None, f"the loading process died before reporting (exit code {code})"
    assert report["outcome"] == "refused", report
    assert reason in report["message"] and str(paths[name]) in report["message"]
    assert "\n" not in report["message"] and len(report["message"]) < 400
    assert report["state_same"], "the load changed an allowed global"


def test_hostile_loads_never_crash_the_process(hostile_reports):
    assert hostile_reports[1] == 0


@pytest.mark.parametrize("size, stride, offset", [((1_000_000,), (1,), 0), ((2,), (1,), 3), ((2, 2), (100, 1), 0),
                                                  ((2,), (-1,), 1), ((4,), (1,), -1)])
def test_tensor_record_beyond_its_storage_is_refused(tmp_path, size, stride, offset):
    # Old code: set_() silently grew the storage with uninitialised heap memory (a memory disclosure).
    path = tmp_path / "oversize.pkl"
    path.write_bytes(PROTO2 + op_tensor(size, stride, offset) + STOP)
    with pytest.raises(UnsafePickleError, match="tensor"):
        nv.load_pickle(path)


def test_tensor_record_inside_its_storage_loads(tmp_path):
    path = tmp_path / "view.pkl"
    path.write_bytes(PROTO2 + op_tensor((2, 2), (1, 2), 0) + STOP)
    assert torch.equal(nv.load_pickle(path), torch.tensor([[0.0, 2.0], [1.0, 3.0]]))


@pytest.mark.parametrize("payload", [
    op_global("builtins", "bytearray") + op_long(2 ** 62) + TUPLE1 + REDUCE,  # REDUCE: bytearray(2**62)
    b"\x80\x05\x96" + struct.pack("<Q", 2 ** 62),  # the BYTEARRAY8 opcode with a length of 2**62
    op_bytes(b"x")[:1] + struct.pack("<I", 2 ** 31),  # BINBYTES longer than the file
])
def test_huge_allocations_are_refused_in_one_line(tmp_path, payload):
    path = tmp_path / "alloc.pkl"
    path.write_bytes(PROTO2 + payload + STOP)
    with pytest.raises(CheckpointError) as err:  # old code: MemoryError with a traceback
        nv.load_pickle(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_numpy_values_are_rebuilt_from_bytes(tmp_path):
    values = {"f32": np.float32(1.5), "i64": np.int64(-7), "b": np.bool_(True), "big": np.arange(6, dtype=">i4"),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "empty": np.zeros((0, 3), np.uint8),
              "c": np.complex64(1 + 2j)}
    path = tmp_path / "numpy.pkl"
    for protocol in (2, 4):
        path.write_bytes(pickle.dumps(values, protocol=protocol))
        loaded = nv.load_pickle(path)
        for k, v in values.items():
            assert type(loaded[k]) is type(v) and loaded[k].dtype == v.dtype and np.array_equal(loaded[k], v), k
        assert loaded["fortran"].flags.f_contiguous


@pytest.mark.parametrize("value", [np.array(["a"], dtype=object), np.array([(1, 2.0)], dtype="i4,f8"),
                                   np.datetime64("2020-01-01"), np.array(["ab"])])
def test_numpy_values_other_than_plain_numbers_are_refused(tmp_path, value):
    path = tmp_path / "numpy.pkl"
    path.write_bytes(pickle.dumps(value, protocol=2))
    with pytest.raises(UnsafePickleError, match="numpy"):
        nv.load_pickle(path)


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


def rosinality_forward(sd, z, truncation=1.0, latent_avg=None, taps=(1.0, 3, 3, 1)):
    """An independent forward in rosinality's formulation (EqualLinear, ModulatedConv2d with
    conv_transpose2d + Blur, FusedLeakyReLU, ToRGB with Upsample), constant noise buffers;
    paddings as rosinality derives them from the blur kernel's length."""
    lrelu = lambda x, b: F.leaky_relu(x + b.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * math.sqrt(2)
    x = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        wgt = sd[f"style.{i}.weight"]
        x = lrelu(F.linear(x, wgt * (0.01 / math.sqrt(wgt.shape[1]))), sd[f"style.{i}.bias"] * 0.01)
        i += 1
    if truncation < 1:
        x = latent_avg + truncation * (x - latent_avg)
    blur = torch.tensor(taps, dtype=torch.float32)
    blur = torch.outer(blur, blur)
    blur = blur / blur.sum() * 4
    p = len(taps) - 2 - 2  # ModulatedConv2d(upsample): (len(blur_kernel) - factor) - (kernel_size - 1)
    conv_pad = ((p + 1) // 2 + 1, p // 2 + 1)
    up_pad = ((len(taps) - 2 + 1) // 2 + 1, (len(taps) - 2) // 2)  # Upsample: p = len - factor

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
            return _ros_upfirdn(out, blur, 1, *conv_pad)
        out = F.conv2d(inp.view(1, b * cin, *inp.shape[2:]), weight.view(b * o, cin, k, k), padding=k // 2, groups=b)
        return out.view(b, o, *out.shape[2:])

    def styled(inp, p, style, noise, upsample=False):
        out = modconv(inp, p + ".conv", style, upsample=upsample)
        out = out + sd[p + ".noise.weight"] * noise
        return lrelu(out, sd[p + ".activate.bias"])

    def to_rgb(inp, p, style, skip=None):
        out = modconv(inp, p + ".conv", style, demod=False) + sd[p + ".bias"]
        if skip is not None:
            out = out + _ros_upfirdn(skip, blur, 2, *up_pad)
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


@pytest.mark.parametrize("taps", [[1, 2, 1], [1, 3, 3, 1], [1, 1]])
def test_rosinality_blur_kernel_from_the_file_is_used(tmp_path, taps):
    cfg = GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=16,
                          mapping_layers=2, resample_filter=taps)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    sd = ck.to_rosinality(G)
    path = tmp_path / "kernel.pt"
    torch.save({"g_ema": sd, "latent_avg": G.mapping.w_avg.clone()}, path)
    loaded = ck.load_generator(str(path))
    z = torch.randn(2, cfg.z_dim)
    ref = rosinality_forward(sd, z, taps=[float(t) for t in taps])  # old code: blurred with [1, 3, 3, 1] regardless
    assert torch.allclose(loaded(z), ref, atol=1e-5), float((loaded(z) - ref).abs().max())


def test_rosinality_kernel_we_cannot_reproduce_is_refused(tmp_path, G):
    sd = ck.to_rosinality(G)
    sd["convs.0.conv.blur.kernel"] = torch.rand(4, 4)  # not separable
    torch.save({"g_ema": sd}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="blur kernels are not one symmetric separable filter"):
        ck.load_generator(str(tmp_path / "odd.pt"))


def test_rosinality_unknown_keys_are_named(tmp_path, G):
    sd = ck.to_rosinality(G)
    sd["convs.0.conv.extra_scale"] = torch.ones(1)
    torch.save({"g_ema": sd}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"extra.pt: rosinality checkpoint: unknown keys \['convs.0.conv.extra_scale"):
        ck.load_generator(str(tmp_path / "extra.pt"))  # old code: loaded, the extra tensor silently ignored


# --- .pt refusals and malformed files: one line naming the file --------------------------------


def test_pt_with_code_is_refused_without_torch_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": Evil(os.system, "true")}, path)
    with pytest.raises(UnsafePickleError) as err:
        ck.load_generator(str(path))
    text = str(err.value)
    assert "weights_only" not in text and "\n" not in text  # old code: torch's advice to re-run with weights_only=False
    assert text.startswith(str(path)) and "objects other than tensors" in text and "posix.system" in text


def _malformed_files(tmp_path, G):
    good = torch.load(ck.save_generator(G, tmp_path / "good.pt"), weights_only=True)
    files = {"empty.pkl": b"", "empty.pt": b"", "garbage.pkl": b"\x80\x04not a pickle", "garbage.pt": b"PK\x03\x04junk"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    bad = {"no_state.pt": {k: v for k, v in good.items() if k != "state_dict"},
           "bad_config.pt": {**good, "config": {**good["config"], "img_resolution": "big"}},
           "unknown_config.pt": {**good, "config": {**good["config"], "depth": 3}},
           "bad_version.pt": {**good, "version": "one"},
           "wrong_shape.pt": {**good, "state_dict": {**good["state_dict"], "mapping.fc0.weight": torch.zeros(2, 2)}}}
    for name, record in bad.items():
        torch.save(record, tmp_path / name)
    return [tmp_path / n for n in [*files, *bad]]


def test_malformed_checkpoints_raise_one_checkpoint_error_naming_the_file(tmp_path, G):
    for path in _malformed_files(tmp_path, G):
        with pytest.raises(CheckpointError) as err:  # old code: KeyError, TypeError, EOFError, RuntimeError
            ck.load_generator(str(path))
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value), str(err.value)


def test_cli_generate_exits_2_with_one_line_for_empty_pkl_and_malformed_pt(tmp_path, G, capsys):
    from priorlab.cluster import cli

    for path in [p for p in _malformed_files(tmp_path, G) if p.name in ("empty.pkl", "no_state.pt", "bad_config.pt")]:
        code = cli.main(["stylegan", "generate", "--checkpoint", str(path), "--seeds", "0",
                         "--out", str(tmp_path / "out"), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# --- priorlab's format, convert, generate -----------------------------------------------------


def test_priorlab_format_roundtrip_and_convert(tmp_path, fake_nvidia, G):
    p = ck.save_generator(G, tmp_path / "g.pt")
    loaded = ck.load_generator(str(p))
    assert loaded.cfg == G.cfg
    z = torch.randn(2, G.z_dim)
    assert torch.equal(loaded(z), G(z))
    pkl = fake_nvidia(tmp_path / "n.pkl", G)
    out = convert(str(pkl), tmp_path / "converted.pt")
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
    paths = generate(spec, seeds=[0, 7], truncation=0.8, noise_mode="const", out_dir=tmp_path / "out", raw=True,
                     device="cpu")
    assert [p.name for p in paths] == ["seed0000.png", "seed0007.png", "raw.npy"]
    raw = np.load(tmp_path / "out" / "raw.npy")
    assert raw.shape == (2, 3, 16, 16) and raw.dtype == np.float32
    z7 = np.random.RandomState(7).randn(1, G.z_dim)
    assert np.array_equal(nvidia_z(7, G.z_dim), z7)
    want = G(torch.from_numpy(z7), truncation_psi=0.8)[0].numpy()
    assert np.allclose(raw[1], want, atol=1e-6)
    png = np.asarray(Image.open(tmp_path / "out" / "seed0007.png"))
    expect = np.clip(want.transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert png.shape == (16, 16, 3) and np.array_equal(png, expect)
