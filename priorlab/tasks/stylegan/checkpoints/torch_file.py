"""`torch.load(weights_only=True)` for .pt/.pth checkpoints, its cost bounded by the file's size.

torch's weights_only unpickler runs no code, but it builds what the file asks for: meta tensors
(no storage, so any shape costs the file nothing), sparse tensors (validated only after torch has
printed a two-line warning), many views of one storage, and zip records that inflate far past the
file. So, as for NVIDIA pickles (`nvidia_pickle._Budget`):

* before torch reads anything, the zip's records together must not inflate past the file's size,
  and its pickle may not build more Python objects than the file's size allows (an EMPTY_DICT
  byte is a 64-byte dict: `nvidia_pickle.check_pickle_heap`);
* nothing torch warns while loading reaches the terminal (a refused file is one line);
* every tensor loaded must be a dense, non-quantized CPU tensor, and all of them together (each
  view counted, so views sharing a storage cannot multiply it) hold at most the file's bytes.
"""

from __future__ import annotations

import argparse
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from ..nvidia_pickle import SLACK_BYTES, CheckpointError, UnsafePickleError, check_pickle_heap, one_line

WALK_LIMIT = 1_000_000  # containers and tensors a checkpoint may hold (rosinality's training files: a few thousand)


def torch_load(path: Path) -> object:
    """The record in a .pt file, refused in one line if it is unsafe, unreadable or larger than the file."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    _check_file(path, size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice and notices are not the user's problem
            # rosinality's train.py stores its argparse.Namespace next to the weights: harmless, allow it.
            if hasattr(torch.serialization, "safe_globals"):
                with torch.serialization.safe_globals([argparse.Namespace]):
                    record = torch.load(path, map_location="cpu", weights_only=True)
            else:
                torch.serialization.add_safe_globals([argparse.Namespace])  # torch 2.4
                record = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's own text advises weights_only=False: we never do that
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise UnsafePickleError(f"{path}: refused: the file holds objects other than tensors{what}; priorlab "
                                f"loads only weights and never runs code from a checkpoint") from None
    except Exception as e:
        raise CheckpointError(one_line(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})")) from None
    _check_tensors(path, record, size)
    return record


def _check_file(path: Path, size: int) -> None:
    """Before torch reads it: a zip's records may not inflate past the file (torch reads each record
    whole), and the pickle torch will unpickle may not build more objects than the file's size allows."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch's legacy format: five pickles, then storages read from the file
            f.seek(0)
            _check_heap(path, f, size, pickles=5)
            return
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            inflated = sum(info.file_size for info in infos)
            if inflated > size + SLACK_BYTES:
                raise UnsafePickleError(f"{path}: refused: its zip records inflate to {inflated} bytes, more "
                                        f"than the {size}-byte file holds (a decompression bomb?)")
            for info in infos:
                if info.filename.endswith("data.pkl"):  # `<archive>/data.pkl`: the record's pickle
                    with z.open(info) as f:
                        _check_heap(path, f, size)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(one_line(f"{path}: not a readable torch checkpoint (a damaged zip: {e})")) from None


def _check_heap(path: Path, stream, size: int, pickles: int = 1) -> None:
    try:
        check_pickle_heap(stream, size, pickles)
    except CheckpointError as e:
        raise type(e)(one_line(f"{path}: refused: {e}")) from None


def _check_tensors(path: Path, record: object, size: int) -> None:
    """Every tensor dense and on the CPU; their bytes together (each view counted) within the file."""
    total, seen, todo = 0, set(), [record]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > WALK_LIMIT:
            raise UnsafePickleError(f"{path}: refused: more than {WALK_LIMIT} objects in one checkpoint")
        if isinstance(obj, torch.Tensor):
            if obj.layout != torch.strided or obj.is_quantized or obj.is_nested:
                raise UnsafePickleError(f"{path}: refused: a {obj.layout} tensor; priorlab loads only dense tensors")
            if obj.device.type != "cpu":
                raise UnsafePickleError(f"{path}: refused: a tensor on the {obj.device.type} device holds no "
                                        f"data from the file; priorlab loads only tensors stored in it")
            total += obj.numel() * obj.element_size()
            if total > size + SLACK_BYTES:
                raise UnsafePickleError(f"{path}: refused: its tensors hold more bytes than the {size}-byte "
                                        f"file (views sharing one storage are each counted)")
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif isinstance(obj, argparse.Namespace):
            todo.extend(vars(obj).values())
