"""Hostile generator checkpoints whose load cost is out of proportion to their size (issue 16, items 6-9).

Each builder writes one file and returns its path; `ATTACKS` names them all. They are shared by
`tests/tasks/test_checkpoint_bounds.py` (each must be refused in one line within 60 s and 2.5 GB)
and `tests/benchmarks/bench_checkpoint_attacks.py` (the before/after table). NVIDIA-layout pickles
are written without NVIDIA's code: `Call(func, *args)` pickles as a REDUCE of `func`, with a stand-in
`torch_utils.persistence` module while `dumps` runs, so a file can say exactly what a hostile writer would.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
import struct
import sys
import types
import warnings
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from priorlab.tasks.stylegan.networks import Generator, GeneratorConfig


class Config(GeneratorConfig):
    """A config as a hostile file declares it: priorlab's bounds are not checked on the writer side."""

    def __post_init__(self) -> None:
        pass


def _reconstruct_persistent_obj(meta):  # NVIDIA's name; pickled by reference, never called here
    raise AssertionError("never called on the writer side")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
_reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"


class Call:
    """Pickles as `func(*args)` (REDUCE); one Call object pickled twice is one REDUCE and a memo get."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class StorageRef:
    """A storage of a zip-format `.pt`, pickled as torch.save's persistent id."""

    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def dumps(obj, protocol: int = 2) -> bytes:
    """C pickle of `obj`, with `torch_utils.persistence` standing in while it runs."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence})
    try:
        buf = io.BytesIO()
        _Pickler(buf, protocol=protocol).dump(obj)
        return buf.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


LOAD_FROM_BYTES = torch.storage._load_from_bytes
REBUILD_TENSOR = torch._utils._rebuild_tensor_v2
PERSISTENT = _reconstruct_persistent_obj
HOOKS = Call(OrderedDict)


def legacy_storage_bytes(values: torch.Tensor) -> bytes:
    """What NVIDIA pickles hold per storage: a legacy `torch.save` of it."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(values.untyped_storage() if values.numel() == 0 else values.storage(), buf,
                   _use_new_zipfile_serialization=False)
    return buf.getvalue()


def storage(values: torch.Tensor) -> Call:
    return Call(LOAD_FROM_BYTES, legacy_storage_bytes(values.contiguous()))


def view(store: Call, shape, offset: int = 0) -> Call:
    """A contiguous float32 tensor of `shape` over `store` (many of them may share it)."""
    shape = tuple(int(s) for s in shape)
    stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
    return Call(REBUILD_TENSOR, store, offset, shape, stride, False, HOOKS)


def nvidia_pickle(cfg: GeneratorConfig, tensor_for, *, drop=()) -> bytes:
    """{'G_ema': the persisted module tree of `Generator(cfg)`} with each tensor `tensor_for(name, shape)`.

    The network is built on the meta device, so a declared size costs the writer nothing; mapping
    layers past the second are copies of the second (building thousands on meta takes minutes).
    Tensors whose name is in `drop` (e.g. 'mapping.w_avg') are left out.
    """
    with torch.device("meta"):
        G = Generator(dataclasses.replace(cfg, mapping_layers=min(cfg.mapping_layers, 2)))
    module_src = "open('module_src_ran', 'w')\n"  # would leave a file behind if it ever ran

    def persist(module: torch.nn.Module, prefix: str, init=None) -> Call:
        groups = {}
        for group in ("_parameters", "_buffers"):
            groups[group] = OrderedDict((k, tensor_for(prefix + k, tuple(v.shape)))
                                        for k, v in getattr(module, group).items()
                                        if v is not None and prefix + k not in drop)
        modules = OrderedDict((k, persist(m, f"{prefix}{k}.")) for k, m in module._modules.items())
        state = {"training": False, **groups, "_non_persistent_buffers_set": set(), "_modules": modules,
                 "_init_kwargs": init or {}}
        for k in ("activation", "conv_clamp", "use_noise", "num_layers", "z_dim", "c_dim", "w_dim",
                  "img_resolution", "img_channels"):
            if k in module.__dict__:
                state[k] = module.__dict__[k]
        for k in ("weight_gain", "bias_gain"):
            if k in module.__dict__:
                state[k] = np.float64(module.__dict__[k])
        if module is G.mapping:
            state["num_layers"] = cfg.mapping_layers
            for i in range(2, cfg.mapping_layers):
                modules[f"fc{i}"] = persist(G.mapping.fc1, f"mapping.fc{i}.")
        return Call(PERSISTENT, dict(type="class", version=6, module_src=module_src,
                                     class_name=type(module).__name__, state=state))

    init = dict(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=3,
                mapping_kwargs=dict(num_layers=cfg.mapping_layers),
                synthesis_kwargs=dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                      num_fp16_res=0, conv_clamp=None, architecture="skip"))
    return dumps({"G_ema": persist(G, "", init)})


def shared_views(shape_limit: int):
    """`tensor_for` giving every tensor a view of one zero storage of `shape_limit` floats."""
    store = storage(torch.zeros(shape_limit))
    return lambda name, shape: view(store, shape)


# --- the attacks ----------------------------------------------------------------------------------


def pkl_shared_views(path: Path) -> Path:
    """Item 6: ~2.7 MB; 5000 mapping layers of 512x512 all viewing one 1 MB storage: a 5 GB network."""
    cfg = Config(img_resolution=4, z_dim=512, w_dim=512, channel_base=32, channel_max=8,
                 mapping_layers=5000)
    path.write_bytes(nvidia_pickle(cfg, shared_views(512 * 512)))
    return path


def pkl_many_layers(path: Path) -> Path:
    """Item 6: 6000 mapping layers of 256x256 over one storage and no w_avg: minutes of CPU to build
    and estimate w_avg through (4096 x 6000 layers), 1.5 GB."""
    cfg = Config(img_resolution=4, z_dim=256, w_dim=256, channel_base=32, channel_max=8,
                 mapping_layers=6000)
    path.write_bytes(nvidia_pickle(cfg, shared_views(256 * 256), drop={"mapping.w_avg"}))
    return path


def _sys_info_payload(entries: int) -> bytes:
    """A zero-element legacy storage whose sys-info record carries `entries` junk keys: slow to parse."""
    real = legacy_storage_bytes(torch.zeros(0))
    parts, f = [], io.BytesIO(real)
    for _ in range(5):  # magic, protocol, sys info, storage record, keys: five pickles, then the data
        start = f.tell()
        _Skip(f).load()
        parts.append(real[start:f.tell()])
    tail = real[f.tell():]
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    info.update({f"k{i}": i & 0x7F for i in range(entries)})
    parts[2] = pickle.dumps(info, protocol=2)
    return b"".join(parts) + tail


class _Skip(pickle.Unpickler):  # reads past a storage record's pickles (they name a storage class)
    def find_class(self, module, name):
        return object

    def persistent_load(self, pid):
        return None


def pkl_reparse(path: Path, size: int = 260_000) -> Path:
    """Item 7: ~260 KB; one memoized storage payload (zero elements, a 30 KB header) referenced
    ~25,000 times: the old loader parsed it again on every reference."""
    payload = _sys_info_payload(3000)
    head = (b"\x80\x02]" + pickle.GLOBAL + b"torch.storage\n_load_from_bytes\nq\x00"
            + b"B" + struct.pack("<I", len(payload)) + payload + b"q\x0100(")
    ref = b"h\x00h\x01\x85R"  # BINGET 0, BINGET 1, TUPLE1, REDUCE
    n = max(1, (size - len(head)) // len(ref))
    path.write_bytes(head + ref * n + b"e.")
    return path


def pkl_huge_resolution(path: Path) -> Path:
    """Item 9: ~100 KB; a valid generator declaring img_resolution 2**15 (no noise buffers): `generate`
    ran out of memory in a traceback."""
    cfg = Config(img_resolution=2 ** 15, z_dim=4, w_dim=4, channel_base=2 ** 15, channel_max=1,
                 mapping_layers=1, use_noise=False)
    path.write_bytes(nvidia_pickle(cfg, lambda name, shape: storage_tensor(shape)))
    return path


def storage_tensor(shape) -> Call:
    """A tensor with its own storage, as NVIDIA writes them."""
    return view(storage(torch.zeros(math.prod(shape))), shape)


def pkl_empty_sets(path: Path, size: int = 40 << 20) -> Path:
    """Item 9: 40 MB of EMPTY_SET opcodes (a 216-byte set per byte)."""
    with open(path, "wb") as f:
        f.write(b"\x80\x04")
        chunk = b"\x8f" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
        f.write(b".")
    return path


def pkl_view_flood(path: Path, size: int = 48 << 20) -> Path:
    """Item 9: 48 MB of 11-byte view records over one memoized storage, memoized args and hooks."""
    store = legacy_storage_bytes(torch.zeros(4))
    head = (b"\x80\x02]" + pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\nq\x00"
            + pickle.GLOBAL + b"torch.storage\n_load_from_bytes\nB" + struct.pack("<I", len(store)) + store
            + b"\x85Rq\x01" + b"K\x00q\x02" + b"K\x04\x85q\x03" + b"K\x01\x85q\x04" + b"\x89q\x05"
            + pickle.GLOBAL + b"collections\nOrderedDict\n)Rq\x06" + b"0000000(")
    ref = b"h\x00(h\x01h\x02h\x03h\x04h\x05h\x06tR"
    n = max(1, (size - len(head)) // len(ref))
    with open(path, "wb") as f:
        f.write(head)
        block = ref * 4096
        for _ in range(n // 4096):
            f.write(block)
        f.write(ref * (n % 4096) + b"e.")
    return path


def _priorlab_record(cfg: GeneratorConfig, state_dict: dict) -> dict:
    return {"format": "priorlab-stylegan2", "version": 1, "config": cfg.to_dict(), "state_dict": state_dict,
            "source": None}


def _meta_shapes(cfg: GeneratorConfig) -> dict[str, tuple]:
    """The state dict's shapes; mapping layers past the second copy the second's (see `nvidia_pickle`)."""
    with torch.device("meta"):
        G = Generator(dataclasses.replace(cfg, mapping_layers=min(cfg.mapping_layers, 2)))
    shapes = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    for i in range(2, cfg.mapping_layers):
        shapes.update({f"mapping.fc{i}.{p}": shapes[f"mapping.fc1.{p}"] for p in ("weight", "bias")})
    return shapes


def pt_meta(path: Path) -> Path:
    """Item 8: ~3 KB .pt; priorlab's format with meta tensors (no storage) for a >8 GiB network."""
    cfg = Config(img_resolution=4, z_dim=512, w_dim=512, channel_base=2 ** 17, channel_max=16384,
                 mapping_layers=2)
    sd = {k: torch.empty(s, device="meta") for k, s in _meta_shapes(cfg).items()}
    torch.save(_priorlab_record(cfg, sd), path)
    return path


def pt_shared_views(path: Path) -> Path:
    """Item 8: ~1.3 MB .pt; 4800 mapping layers viewing one 1 MB storage (torch.save keeps the sharing)."""
    cfg = Config(img_resolution=4, z_dim=512, w_dim=512, channel_base=32, channel_max=8,
                 mapping_layers=4800)
    base = torch.zeros(512 * 512)
    sd = {k: base[: math.prod(s)].view(s) for k, s in _meta_shapes(cfg).items()}
    torch.save(_priorlab_record(cfg, sd), path)
    return path


class _RepeatedZeros:
    """A deflate compressor for a run of equal zero chunks: each chunk's output, after a full flush,
    is the same bytes, so it is computed once."""

    def __init__(self, chunk: int) -> None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
        self.end = c.flush()

    def compress(self, data: bytes) -> bytes:
        return self.block

    def flush(self) -> bytes:
        return self.end


def pt_zip_bomb(path: Path, inflated: int = 2 << 30) -> Path:
    """Item 8: a ~2 MB zip whose one storage record deflates to `inflated` bytes (2 GiB); every
    tensor of a small priorlab-format generator views it."""
    cfg = Config(img_resolution=4, z_dim=8, w_dim=8, channel_base=32, channel_max=8, mapping_layers=1)
    big = StorageRef("0", inflated // 4)
    sd = {k: view(big, s) for k, s in _meta_shapes(cfg).items()}
    buf = io.BytesIO()
    buf.write(dumps(_priorlab_record(cfg, sd)))
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("archive/data.pkl", buf.getvalue())
        out.writestr("archive/byteorder", "little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        zeros = bytes(1 << 24)
        with out.open(info, "w", force_zip64=True) as f:
            f._compressor = _RepeatedZeros(len(zeros))  # deflating 2 GiB would take the writer a minute
            for _ in range(inflated // len(zeros)):
                f.write(zeros)
        out.writestr("archive/version", "3\n")
    return path


def pt_sparse(path: Path) -> Path:
    """Item 9: a sparse tensor with out-of-range indices (torch warned in two lines, then refused)."""
    bad = torch.sparse_coo_tensor(torch.tensor([[0, 5_000_000]]), torch.tensor([1.0, 2.0]), (10,),
                                  check_invariants=False)
    torch.save({"g_ema": {"style.1.weight": bad}}, path)
    return path


def pt_dict_flood(path: Path, size: int = 20 << 20) -> Path:
    """Beyond the issue: a zip .pt whose data.pkl is 20 MB of EMPTY_DICT opcodes; torch's own
    weights_only unpickler made a 64-byte dict of each byte (2.2 GB, two minutes)."""
    buf = io.BytesIO()
    torch.save({"g_ema": {}}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            data = b"\x80\x02" + b"}" * size + b"." if name.endswith("data.pkl") else src.read(name)
            out.writestr(name, data)
    return path


ATTACKS = {
    "pkl_shared_views": (pkl_shared_views, ".pkl"),
    "pkl_many_layers": (pkl_many_layers, ".pkl"),
    "pkl_reparse": (pkl_reparse, ".pkl"),
    "pkl_huge_resolution": (pkl_huge_resolution, ".pkl"),
    "pkl_empty_sets": (pkl_empty_sets, ".pkl"),
    "pkl_view_flood": (pkl_view_flood, ".pkl"),
    "pt_meta": (pt_meta, ".pt"),
    "pt_shared_views": (pt_shared_views, ".pt"),
    "pt_zip_bomb": (pt_zip_bomb, ".pt"),
    "pt_sparse": (pt_sparse, ".pt"),
    "pt_dict_flood": (pt_dict_flood, ".pt"),
}
