"""Fuzzing the NVIDIA-pickle loader: mutated valid pickles load or fail in one priorlab line.

A small valid pickle in NVIDIA's persistence layout is written here (protocols 2, 3 and 4), then
a child process mutates it for a fixed budget: flipped opcodes and bytes, truncation, spliced
records, globals from the allow-list inserted anywhere, extreme integers in tensor records and
flipped bytes inside the nested storage pickles, and floods (one record repeated up to 100,000
times: views, empty sets, memo puts). Every load must either give a generator or
raise `CheckpointError` with one line; the child must never crash (its exit code is checked)
and never write a file (its working folder must stay empty; the pickles' `module_src` would
write one there if it ever ran).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from priorlab.tasks.stylegan import checkpoints as ck

FUZZ_SECONDS = int(os.environ.get("PRIORLAB_FUZZ_SECONDS", "20"))  # CI budget; longer runs locally


def write_nvidia_pickles(folder: Path, monkeypatch) -> list[Path]:
    """The same small generator in NVIDIA's layout, pickled with protocols 2, 3 and 4."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("never called on the writer side")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    dnnlib_util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", dnnlib_util)]:
        monkeypatch.setitem(sys.modules, name, module)

    class Persisted:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    def persist(module, init=None):
        state = {"training": False,
                 "_parameters": OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                                            for k, v in module._parameters.items()),
                 "_buffers": OrderedDict((k, v.clone()) for k, v in module._buffers.items()),
                 "_non_persistent_buffers_set": set(),
                 "_modules": OrderedDict((k, persist(m)) for k, m in module._modules.items()),
                 "_init_kwargs": EasyDict(init or {})}
        for k in ("activation", "conv_clamp", "use_noise", "num_layers", "z_dim", "c_dim", "w_dim", "img_resolution",
                  "img_channels"):
            if k in module.__dict__:
                state[k] = module.__dict__[k]
        for k in ("weight_gain", "bias_gain"):
            if k in module.__dict__:
                state[k] = np.float64(module.__dict__[k])
        # If this text were ever executed it would leave a file in the loader's working folder.
        meta = dict(type="class", version=6, module_src="open('module_src_ran', 'w')\n",
                    class_name=type(module).__name__, state=state)
        return Persisted(meta)

    G = ck.load_generator("random:8?z_dim=8&w_dim=8&channel_base=64&channel_max=8&mapping_layers=2")
    cfg = G.cfg
    init = dict(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=3,
                mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers),
                synthesis_kwargs=EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                          num_fp16_res=0, conv_clamp=None, architecture="skip"))
    data = {"G_ema": persist(G, init), "augment_pipe": None,
            "progress": EasyDict(cur_nimg=np.int64(1000), stats=np.arange(3.0), flags=frozenset({"a"}))}
    paths = []
    for protocol in (2, 3, 4):
        path = folder / f"valid_p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        paths.append(path)
    return paths


CHILD = r"""
import io, json, os, pickle, pickletools, random, resource, sys, time, warnings
warnings.simplefilter("ignore")
from priorlab.tasks.stylegan import checkpoints as ck, nvidia_pickle as nv
import torch
torch.set_num_threads(1)

seconds, work, *valid_paths = sys.argv[1:]
valid = [open(p, "rb").read() for p in valid_paths]
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), resource.RLIM_INFINITY))  # a runaway allocation fails fast

def boundaries(data):
    return [pos for _, _, pos in pickletools.genops(data)]

def ints(data):  # (position, opcode) of every small-int opcode: sizes, strides, offsets, config values
    return [(pos, op.name) for op, _, pos in pickletools.genops(data) if op.name in ("BININT", "BININT1", "BININT2")]

def blobs(data):  # (start, end) of bytes payloads: the nested storage pickles
    out = []
    for op, arg, pos in pickletools.genops(data):
        if op.name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8") and len(arg) > 16:
            head = {"SHORT_BINBYTES": 2, "BINBYTES": 5, "BINBYTES8": 9}[op.name]
            out.append((pos + head, pos + head + len(arg)))
    return out

info = [(boundaries(d), ints(d), blobs(d)) for d in valid]
OPCODES = [ord(c) for c in "()*.0128BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}" ] + list(range(0x80, 0x99))
EXTREMES = [0, 1, -1, 2, 3, 255, 65535, 2**31 - 1, -2**31, 2**24, 17, 2**15, 8192, 4096]  # 2**15: a resolution
ALLOWED = sorted(nv.ALLOWED) + [("os", "system"), ("builtins", "eval"), ("numpy", "frombuffer")]

def arg_ops(rng):
    choices = [b"N", b")", b"K\x03", b"J\xff\xff\xff\x7f", b"X\x01\x00\x00\x00a", b"C\x08AAAAAAAA", b"}", b"]",
               b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40", b"X\x02\x00\x00\x00O8", b"X\x02\x00\x00\x00f8"]
    return b"".join(rng.choice(choices) for _ in range(rng.randint(0, 3)))

def mutate(rng):
    k = rng.randrange(len(valid))
    data, (bounds, int_ops, blob_ranges) = bytearray(valid[k]), info[k]
    kind = rng.choice(["flip", "opcode", "truncate", "splice", "global", "int", "nested", "repeat"])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "opcode":
        for _ in range(rng.randint(1, 2)):
            data[rng.choice(bounds)] = rng.choice(OPCODES)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))]
    elif kind == "splice":
        donor = valid[rng.randrange(len(valid))]
        donor_bounds = boundaries(donor)
        a = rng.choice(donor_bounds)
        b = min(len(donor), a + rng.choice([1, 5, 20, 100, 1000]))
        at = rng.choice(bounds)
        cut = rng.choice([0, 0, rng.randint(1, 50)])
        data = data[:at] + donor[a:b] + data[at + cut:]
    elif kind == "global":
        module, name = rng.choice(ALLOWED)
        insert = f"c{module}\n{name}\n".encode() + rng.choice([b"", b"(" + arg_ops(rng) + b"tR", b")R",
                                                               b"N}X\x01\x00\x00\x00x" + arg_ops(rng) + b"s\x86b"])
        at = rng.choice(bounds)
        data = data[:at] + insert + data[at:]
    elif kind == "int" and int_ops:
        pos, name = rng.choice(int_ops)
        width = {"BININT": 4, "BININT1": 1, "BININT2": 2}[name]
        new = b"J" + rng.choice(EXTREMES).to_bytes(4, "little", signed=True)
        data = data[:pos] + new + data[pos + 1 + width:]
    elif kind == "repeat":  # floods: one record (a view, an empty set, a memo put, ...) many times over
        a = rng.choice(bounds)
        ends = [b for b in bounds if a < b <= a + 64] or [min(a + 1, len(data))]
        b = rng.choice(ends)
        times = min(rng.choice([10, 1000, 100_000]), 400_000 // max(1, b - a))
        data = data[:b] + bytes(data[a:b]) * times + data[b:]
    elif kind == "nested" and blob_ranges:
        start, end = rng.choice(blob_ranges)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(start, end)] = rng.randrange(256)
    return kind, bytes(data)

stats = {"loaded": 0, "refused": 0, "max_seconds": 0.0}
target = os.path.join(work, "mutated.pkl")
deadline = time.monotonic() + float(seconds)
Error = getattr(ck, "CheckpointError", None) or (ValueError, pickle.UnpicklingError)  # (the old code had none)
i = start = int(os.environ.get("PRIORLAB_FUZZ_START", "0"))  # a longer local run can go on from another seed
while time.monotonic() < deadline:
    rng = random.Random(i)
    kind, data = mutate(rng)
    with open(target, "wb") as f:
        f.write(data)
    t0 = time.monotonic()
    try:
        ck.load_generator(target)
        stats["loaded"] += 1
    except Error as e:
        text = str(e)
        if "\n" in text or len(text) > 600 or "MemoryError" in text or not text.startswith(target):
            print(json.dumps({"fail": "message", "seed": i, "kind": kind, "message": text[:2000]}), flush=True)
            sys.exit(3)
        stats["refused"] += 1
    except BaseException as e:
        print(json.dumps({"fail": type(e).__name__, "seed": i, "kind": kind, "message": str(e)[:2000]}), flush=True)
        sys.exit(3)
    stats["max_seconds"] = max(stats["max_seconds"], time.monotonic() - t0)
    i += 1
stats["iterations"] = i - start
print(json.dumps(stats), flush=True)
"""


def test_mutated_nvidia_pickles_load_or_fail_in_one_line(tmp_path, monkeypatch):
    inputs, cwd, work = tmp_path / "inputs", tmp_path / "cwd", tmp_path / "work"
    for d in (inputs, cwd, work):
        d.mkdir()
    valid = write_nvidia_pickles(inputs, monkeypatch)
    for path in valid:  # the seeds themselves load
        assert ck.load_generator(str(path)).cfg.img_resolution == 8
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(FUZZ_SECONDS), str(work), *map(str, valid)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=FUZZ_SECONDS + 240)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, f"exit code {proc.returncode}: {lines[-1:] or proc.stderr[-2000:]}"
    assert os.listdir(cwd) == [], "a load wrote a file"
    stats = lines[-1]
    print(f"fuzz: {stats}")
    assert stats["iterations"] >= 50 and stats["refused"] > 0 and stats["loaded"] > 0, stats
    assert stats["max_seconds"] < 60, stats  # issue 16: any load within 60 s (and 2 GB, the child's cap)
