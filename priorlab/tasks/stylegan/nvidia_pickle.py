"""Reading NVIDIA stylegan2-ada-pytorch pickles without running any code stored in them.

Their `.pkl` files are `pickle.dump`s of `torch_utils.persistence` classes: each module
pickles as `_reconstruct_persistent_obj(meta)` where `meta` holds the source code of its
Python module (`module_src`, normally `exec`-ed on load), `class_name` and `state` (the
module's `__dict__`: `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...). Tensors
pickle as `torch._utils._rebuild_tensor_v2(storage, ...)` with each storage as
`torch.storage._load_from_bytes(bytes)`, the bytes being a legacy `torch.save` of that storage.
Config values hold numpy scalars and arrays (`numpy.core.multiarray.scalar(dtype, bytes)`,
`_reconstruct` + BUILD), dtypes as `numpy.dtype('f8', False, True)` + BUILD.

How the load stays inert
------------------------
`RestrictedUnpickler` is Python's own pure-Python unpickler (`pickle._Unpickler`, so every
opcode runs as Python we can override) with every opcode that can reach code replaced:

* GLOBAL / STACK_GLOBAL resolve only `ALLOWED` (below) and map each name to a priorlab
  stand-in: nothing from torch, numpy or the stdlib is handed out except inert values
  (torch dtypes) and the plain container types listed. Any other name stops the load with
  `UnsafePickleError` before it can be called.
* REDUCE calls only the stand-in functions of `ALLOWED` (`_CALLABLE`); each checks the types of
  its arguments. NEWOBJ only creates an `EasyDict`; INST, OBJ, EXT*, persistent ids and
  out-of-band buffers are refused.
* BUILD (set an object's state) never calls a `__setstate__` and never sets attributes. It
  only completes priorlab's own pending numpy records (`_PendingDType`, `_PendingArray`),
  which turn into plain dtypes and arrays. A BUILD on anything else (a class, a function, a
  module, a tensor, a dtype) is refused; only a dict's empty state (what copyreg writes for a
  dict subclass) is accepted, and changes nothing.
* Containers are only filled through list/dict/set opcodes on real lists/dicts/sets; dict
  keys and set members must be str, bytes, bool, None or an int below 2**61 (their hashes
  cannot be made to collide, and comparing them runs no code).

Why each `ALLOWED` entry cannot reach code:

* `torch_utils.persistence._reconstruct_persistent_obj` -> `PersistentMeta(meta)`: a dict; the
  module source stays text and is never executed.
* `torch.storage._load_from_bytes` -> `_load_from_bytes`: parses the legacy storage format
  here (three small pickles read by this same restricted unpickler, then raw bytes), never
  `torch.load`; the storage is exactly the bytes in the file.
* `torch._utils._rebuild_tensor_v2/_v3`, `_rebuild_parameter(_with_state)`,
  `torch._tensor._rebuild_from_type_v2` -> priorlab's rebuilders: a tensor view over a parsed
  storage after checking offset, sizes and strides against the storage's length (a record
  can never grow a storage); hooks, metadata and Parameter state are dropped.
* `torch.Tensor`, `torch.nn.parameter.Parameter`, `numpy.ndarray` -> tokens that cannot be
  called; `torch.<dtype>` -> the dtype object for plain numeric dtypes only.
* `torch.Size`, `torch.device`, `collections.OrderedDict`, `builtins.set/frozenset/bytearray/bytes`,
  `_codecs.encode`, `dnnlib(.util).EasyDict` -> wrappers that accept only plain values (ints,
  strings, bytes, lists of simple keys), so no user object's methods run and the result is
  never larger than its input (`bytearray(2**62)` is refused).
* `numpy.dtype` -> `_PendingDType` from a fixed table of plain numeric dtypes (`_NUMPY_DTYPES`);
  its BUILD state is checked field by field (byte order, no fields, no subarray, flags 0).
  numpy's own `dtype.__setstate__` is never called, so an object dtype cannot be made.
* `numpy(._)core.multiarray.scalar` / `_reconstruct` -> values parsed from bytes with
  `np.frombuffer` on a checked plain dtype, the byte count matching the shape exactly.

Resource limits (`_Budget`): every length read from the file is checked against the bytes left
before anything is allocated; the memo holds at most one entry per byte of the file; decoded
data (storages, arrays, byte strings), the bytes of all tensors (each view counted, so views
sharing a storage cannot multiply it) and the Python objects built (each opcode's result at its
heap size) are each bounded by the file's size; a storage payload is parsed once however often
it is referenced. So a load's time and memory are a small multiple of the file's size.
`plain()` and `flatten_state()` visit each object once, so shared references cannot make
them exponential. Every failure is a `CheckpointError` with one line naming the file.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message is one line naming the file."""


class UnsafePickleError(CheckpointError, pickle.UnpicklingError):
    """The pickle asks for something outside the allow-list; nothing from it was called."""


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters (messages quote file contents)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def short_repr(value: Any, limit: int = 60) -> str:
    """repr of a simple value (shortened), else its type name: never walks a container."""
    if value is None or isinstance(value, (str, bytes, bool, int, float)):
        try:
            return one_line(repr(value), limit)
        except ValueError:  # an int too long to print
            return "a very long int"
    return f"a {type(value).__name__}"


class PersistentMeta(dict):
    """What `_reconstruct_persistent_obj(meta)` gives here: the meta dict itself.

    Keys: `type`, `version`, `module_src` (text, never executed), `class_name`, `state`.
    """


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access in NVIDIA's code)."""


class _Token:
    """Stands for an allowed class (`torch.Tensor`, `numpy.ndarray`, ...); it cannot be called."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_TENSOR = _Token("torch.Tensor")
_PARAMETER = _Token("torch.nn.Parameter")
_NDARRAY = _Token("numpy.ndarray")


# --- limits -------------------------------------------------------------------------------------

MAX_DIMS = 16  # tensor and array ranks
SLACK_BYTES = 1 << 20  # decoded data may exceed the file size by this much (headers are smaller than data)
HEAP_PER_FILE_BYTE = 2  # Python objects a load builds: at most this many heap bytes per byte of the file...
HEAP_SLACK = 16 << 20  # ...plus this much (a small valid pickle's dicts, strings and memo)
TENSOR_HEAP = 512  # heap bytes of one tensor object (TensorImpl, Python wrapper), counted even for 0 elements
STORAGE_HEAP = 512  # heap bytes of one parsed storage, counted even for 0 elements


def heap_limit(file_size: int) -> int:
    """Heap bytes the Python objects of a `file_size`-byte checkpoint may take."""
    return HEAP_PER_FILE_BYTE * file_size + HEAP_SLACK


class _Budget:
    """What one load may build, each part bounded by the file's size, so that no arrangement of
    references makes a small file expensive:

    * decoded data (storages, arrays, byte strings): the file's size plus `SLACK_BYTES`;
    * tensor bytes: every tensor counted with all its elements, so views sharing one storage
      (or one storage referenced many times) cannot stand for more data than the file holds;
    * Python heap: each opcode's result at its approximate CPython size (`_HEAP_COST`), each
      tensor and storage at a fixed size, at most `HEAP_PER_FILE_BYTE` per file byte: an
      EMPTY_SET per byte (216 bytes of heap each) or a flood of 11-byte view records stops early.

    A storage payload is parsed once however often the file references it (`storages`, `encoded`).
    """

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.left = file_size + SLACK_BYTES
        self.tensor_left = file_size + SLACK_BYTES
        self.heap_left = heap_limit(file_size)
        self.storages: dict[int, tuple[bytes, Storage]] = {}  # id(payload) -> (payload, its storage)
        self.encoded: dict[int, tuple[str, bytes]] = {}  # id(text) -> (text, its bytes): protocol 2's bytes

    def take(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise UnsafePickleError(f"{what} would decode to more data than the {self.file_size}-byte file holds")

    def tensor(self, nbytes: int) -> None:
        self.tensor_left -= nbytes
        self.heap(TENSOR_HEAP)
        if self.tensor_left < 0:
            raise UnsafePickleError(f"its tensors hold more bytes than the {self.file_size}-byte file (views "
                                    f"sharing one storage are each counted)")

    def heap(self, n: int) -> None:
        self.heap_left -= n
        if self.heap_left < 0:
            raise UnsafePickleError(f"it builds more Python objects than a {self.file_size}-byte checkpoint "
                                    f"can describe (more than {HEAP_PER_FILE_BYTE} heap bytes per file byte)")


# --- plain values -------------------------------------------------------------------------------

_KEY_INT_LIMIT = 1 << 61  # ints below this hash to themselves: keys cannot be made to collide


def _check_key(key: Any, where: str) -> None:
    t = type(key)
    if t in (str, bytes, bool) or key is None or (t is int and -_KEY_INT_LIMIT < key < _KEY_INT_LIMIT):
        return
    raise UnsafePickleError(f"{where}: a {t.__name__} as a key or set member (allowed: str, bytes, int, bool, None)")


def _check_int(value: Any, what: str, low: int = 0, high: int = 1 << 62) -> int:
    if type(value) is not int or not low <= value <= high:
        raise UnsafePickleError(f"{what}: {short_repr(value)} is not an int in [{low}, {high}]")
    return value


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS:
        raise UnsafePickleError(f"{what}: expected a tuple of at most {MAX_DIMS} ints, found {short_repr(value)}")
    return tuple(_check_int(v, what) for v in value)


# --- torch storages and tensors ---------------------------------------------------------------

# Plain numeric torch dtypes by every name torch pickles them under (`torch.float32`, ...).
_TORCH_DTYPES = {name: getattr(torch, name) for name in (
    "float16", "half", "bfloat16", "float32", "float", "float64", "double", "int8", "int16", "short",
    "int32", "int", "int64", "long", "uint8", "bool", "complex64", "complex128")}

# Legacy storage classes in `_load_from_bytes` payloads -> the dtype of their elements.
_STORAGE_TYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001


class _StorageType(_Token):
    def __init__(self, name: str, dtype: torch.dtype) -> None:
        super().__init__(f"torch.{name}")
        self.dtype = dtype


class _StorageRecord:
    """The persistent id of the one storage in a `_load_from_bytes` payload."""

    def __init__(self, dtype: torch.dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel


class Storage:
    """A storage parsed from the file: raw bytes (not resizable) and the dtype they were saved as."""

    def __init__(self, untyped: torch.UntypedStorage, nbytes: int, dtype: torch.dtype) -> None:
        self.untyped, self.nbytes, self.dtype = untyped, nbytes, dtype


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode is ours to control
    """Resolves only `ALLOWED` globals; see the module docstring for the opcode rules."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: io.BufferedIOBase, size: int, budget: _Budget, storage_record: bool = False) -> None:
        self._exact = _ExactReader(file, size)
        super().__init__(self._exact, encoding="ASCII")
        self.budget = budget
        self.storage_record = storage_record  # a `_load_from_bytes` payload: storage classes and one persistent id
        self.memo_limit = size + 16

    # -- globals and calls --
    def find_class(self, module: str, name: str) -> Any:
        if self.storage_record:  # a storage payload names only its storage class
            if (module == "torch" and name in _STORAGE_TYPES) or (module, name) == ("torch.storage", "UntypedStorage"):
                return _StorageType(name, _STORAGE_TYPES[name])
            raise UnsafePickleError(f"refusing global {one_line(module, 80)}.{one_line(name, 80)} in a storage record")
        target = ALLOWED.get((module, name))
        if target is not None:
            return target
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        raise UnsafePickleError(
            f"refusing global {one_line(module, 80)}.{one_line(name, 80)}: this pickle may run code when loaded; "
            f"only the tensor, numpy and container rebuilders of NVIDIA's format are allowed "
            f"(`ALLOWED` in tasks/stylegan/nvidia_pickle.py)"
        )

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not any(func is f for f in _CALLABLE):
            raise UnsafePickleError(f"refusing to call {short_repr(func)}: only the allowed rebuilders may be called")
        if type(args) is not tuple:
            raise UnsafePickleError("a call (REDUCE) without an argument tuple")
        if any(func is f for f in _BUDGETED):  # what they build counts against this load's budget
            self.stack[-1] = func(*args, budget=self.budget)
            return
        self.stack[-1] = func(*args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not EasyDict or type(args) is not tuple or args:
            raise UnsafePickleError(f"refusing to create {short_repr(cls)} (NEWOBJ): only EasyDict() is allowed")
        self.append(EasyDict())

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not EasyDict or type(args) is not tuple or args or type(kwargs) is not dict or kwargs:
            raise UnsafePickleError(f"refusing to create {short_repr(cls)} (NEWOBJ_EX): only EasyDict() is allowed")
        self.append(EasyDict())

    def _refuse(self, what: str) -> None:
        raise UnsafePickleError(f"refusing the {what} opcode: NVIDIA pickles never use it")

    def load_inst(self) -> None:
        self._refuse("INST")

    def load_obj(self) -> None:
        self._refuse("OBJ")

    def load_ext(self) -> None:  # would consult (and fill) copyreg's global extension cache
        self._refuse("EXT")

    def load_buffer(self) -> None:
        self._refuse("out-of-band buffer")

    def persistent_load(self, pid: Any) -> Any:
        if self.storage_record and type(pid) is tuple and len(pid) == 6 and pid[0] == "storage":
            _, storage_type, key, location, numel, view = pid
            if not isinstance(storage_type, _StorageType) or type(key) is not str or type(location) is not str \
                    or view is not None:
                raise UnsafePickleError("a storage record with an unexpected layout")
            return _StorageRecord(storage_type.dtype, key, _check_int(numel, "storage size"))
        raise UnsafePickleError(f"unexpected persistent id {short_repr(pid)} in a plain pickle")

    # -- state --
    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, _Pending):
            value = inst.build(state, self.budget)
            self.stack[-1] = value
            for key in inst.memo_keys:  # memo copies taken before the BUILD become the built value too
                if self.memo.get(key) is inst:
                    self.memo[key] = value
            return
        if type(inst) in (EasyDict, OrderedDict, PersistentMeta, dict) and _empty_state(state):
            return  # an empty instance state (what copyreg writes for a dict subclass): nothing to set
        raise UnsafePickleError(f"refusing to set the state of {short_repr(inst)} (BUILD): only numpy dtype and "
                                f"array records carry a state")

    # -- memo --
    def _memo_put(self, index: int) -> None:
        if type(index) is not int or not 0 <= index < (1 << 32):
            raise UnsafePickleError(f"memo index {short_repr(index)} out of range")
        if len(self.memo) >= self.memo_limit:
            raise UnsafePickleError("more memo entries than bytes in the file")
        value = self.stack[-1]
        if isinstance(value, _Pending):
            value.memo_keys.append(index)
        self.memo[index] = value

    def load_put(self) -> None:
        self._memo_put(int(self.readline()[:-1]))

    def load_binput(self) -> None:
        self._memo_put(self.read(1)[0])

    def load_long_binput(self) -> None:
        self._memo_put(struct.unpack("<I", self.read(4))[0])

    def load_memoize(self) -> None:
        self._memo_put(len(self.memo))

    # -- containers: only real lists, dicts and sets; simple keys --
    def load_append(self) -> None:
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not list:
            raise UnsafePickleError(f"APPEND to {short_repr(target)}: only lists")
        target.append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:
            raise UnsafePickleError(f"APPENDS to {short_repr(target)}: only lists")
        target.extend(items)

    def _set_items(self, target: Any, items: list) -> None:
        if type(target) not in (dict, OrderedDict, EasyDict, PersistentMeta):
            raise UnsafePickleError(f"SETITEM on {short_repr(target)}: only dicts")
        if len(items) % 2:
            raise UnsafePickleError("SETITEMS with an odd number of items")
        for i in range(0, len(items), 2):
            _check_key(items[i], "dict")
            target[items[i]] = items[i + 1]

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._set_items(self.stack[-1], [key, value])

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._set_items(self.stack[-1], items)

    def load_dict(self) -> None:  # protocol 0/1: a dict from the marked items
        items = self.pop_mark()
        out: dict = {}
        self._set_items(out, items)
        self.append(out)

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise UnsafePickleError(f"ADDITEMS to {short_repr(target)}: only sets")
        for item in items:
            _check_key(item, "set")
        target.update(items)

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        for item in items:
            _check_key(item, "frozenset")
        self.append(frozenset(items))

    def load_bytearray8(self) -> None:  # the stock version allocates the length before reading
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)
        self.budget.take(n, "a bytearray")
        self.append(bytearray(data))

    def load(self) -> Any:
        try:
            return super().load()
        except EOFError:
            raise CheckpointError("the pickle ends early (truncated or empty file)") from None


for _op, _fn in {
    pickle.REDUCE: _Unpickler.load_reduce, pickle.NEWOBJ: _Unpickler.load_newobj,
    pickle.NEWOBJ_EX: _Unpickler.load_newobj_ex, pickle.INST: _Unpickler.load_inst, pickle.OBJ: _Unpickler.load_obj,
    pickle.EXT1: _Unpickler.load_ext, pickle.EXT2: _Unpickler.load_ext, pickle.EXT4: _Unpickler.load_ext,
    pickle.NEXT_BUFFER: _Unpickler.load_buffer, pickle.READONLY_BUFFER: _Unpickler.load_buffer,
    pickle.BUILD: _Unpickler.load_build, pickle.PUT: _Unpickler.load_put, pickle.BINPUT: _Unpickler.load_binput,
    pickle.LONG_BINPUT: _Unpickler.load_long_binput, pickle.MEMOIZE: _Unpickler.load_memoize,
    pickle.APPEND: _Unpickler.load_append, pickle.APPENDS: _Unpickler.load_appends,
    pickle.SETITEM: _Unpickler.load_setitem, pickle.SETITEMS: _Unpickler.load_setitems,
    pickle.ADDITEMS: _Unpickler.load_additems, pickle.FROZENSET: _Unpickler.load_frozenset,
    pickle.BYTEARRAY8: _Unpickler.load_bytearray8, pickle.DICT: _Unpickler.load_dict,
}.items():
    _Unpickler.dispatch[_op[0]] = _fn

for _byte in range(256):  # a byte that is no opcode: say so (the stock loop raises a bare KeyError)
    if _byte not in _Unpickler.dispatch:
        def _unknown(self: _Unpickler, _byte: int = _byte) -> None:
            raise CheckpointError(f"unknown pickle opcode 0x{_byte:02x} (corrupt file?)")
        _Unpickler.dispatch[_byte] = _unknown

# Heap bytes each opcode adds (64-bit CPython sizes, rounded up): (fixed, per item since its MARK).
# Anything not listed pushes or pops one reference (8). Strings and bytes are charged their object
# header only: their characters are bytes of the file already.
_SET_HEAP, _SET_ITEM_HEAP, _DICT_HEAP, _DICT_ITEM_HEAP = 216, 32, 64, 24
_HEAP_COST: dict[bytes, tuple[int, int]] = {
    pickle.EMPTY_SET: (_SET_HEAP, 0), pickle.FROZENSET: (_SET_HEAP, _SET_ITEM_HEAP), pickle.ADDITEMS: (0, _SET_ITEM_HEAP),
    pickle.EMPTY_DICT: (_DICT_HEAP, 0), pickle.DICT: (_DICT_HEAP, _DICT_ITEM_HEAP), pickle.SETITEM: (2 * _DICT_ITEM_HEAP, 0),
    pickle.SETITEMS: (0, _DICT_ITEM_HEAP), pickle.EMPTY_LIST: (56, 0), pickle.LIST: (56, 8), pickle.APPEND: (8, 0),
    pickle.APPENDS: (0, 8), pickle.TUPLE: (40, 8), pickle.TUPLE1: (48, 0), pickle.TUPLE2: (56, 0), pickle.TUPLE3: (64, 0),
    pickle.MARK: (64, 0), pickle.REDUCE: (64, 0), pickle.NEWOBJ: (64, 0), pickle.NEWOBJ_EX: (64, 0),
    pickle.PUT: (96, 0), pickle.BINPUT: (96, 0), pickle.LONG_BINPUT: (96, 0), pickle.MEMOIZE: (96, 0),
    pickle.BININT: (32, 0), pickle.BININT2: (32, 0), pickle.LONG1: (32, 0), pickle.LONG4: (32, 0), pickle.INT: (32, 0),
    pickle.LONG: (32, 0), pickle.BINFLOAT: (32, 0), pickle.FLOAT: (32, 0),
    pickle.BINUNICODE: (80, 0), pickle.SHORT_BINUNICODE: (80, 0), pickle.BINUNICODE8: (80, 0), pickle.UNICODE: (80, 0),
    pickle.BINSTRING: (80, 0), pickle.SHORT_BINSTRING: (80, 0), pickle.STRING: (80, 0), pickle.BINBYTES: (48, 0),
    pickle.SHORT_BINBYTES: (48, 0), pickle.BINBYTES8: (48, 0), pickle.BYTEARRAY8: (64, 0),
}


def _charged(load: Any, fixed: int, per_item: int) -> Any:
    if per_item:
        def op(self: _Unpickler) -> None:
            self.budget.heap(fixed + per_item * len(self.stack))  # the items since the MARK
            load(self)
    else:
        def op(self: _Unpickler) -> None:
            self.budget.heap(fixed)
            load(self)
    return op


for _byte, _load in list(_Unpickler.dispatch.items()):
    _fixed, _per_item = _HEAP_COST.get(bytes([_byte]), (8, 0))
    _Unpickler.dispatch[_byte] = _charged(_load, _fixed, _per_item)

RestrictedUnpickler = _Unpickler


def check_pickle_heap(stream: io.BufferedIOBase, file_size: int, pickles: int = 1) -> None:
    """Refuse `pickles` consecutive pickles in `stream` whose objects would take more heap than a
    `file_size`-byte checkpoint may (`heap_limit`), reading their opcodes without building anything.

    For loaders that build objects with someone else's unpickler (torch's weights_only one), which
    would make a 216-byte set of each EMPTY_SET byte: each opcode counts its `_HEAP_COST`
    (fixed part; the per-item part needs the stack, which only a real load has).
    """
    import pickletools

    heap, limit = 0, heap_limit(file_size)
    try:
        for _ in range(pickles):
            for op, _arg, _pos in pickletools.genops(stream):
                heap += _HEAP_COST.get(op.code.encode("latin-1"), (8, 0))[0]
                if heap > limit:
                    raise UnsafePickleError(f"its pickle builds more Python objects than a {file_size}-byte "
                                            f"checkpoint can describe (more than {HEAP_PER_FILE_BYTE} heap bytes "
                                            f"per file byte)")
    except ValueError as e:  # pickletools: an unknown opcode or a truncated argument
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(one_line(f"a damaged pickle ({e})")) from None


class _ExactReader:
    """File reads that never ask for more than the bytes left, and fail on a short read."""

    def __init__(self, file: io.BufferedIOBase, size: int) -> None:
        self.file, self.left = file, size

    def read(self, n: int) -> bytes:
        if n > self.left:
            raise CheckpointError(f"a record asks for {n} bytes but only {self.left} are left (truncated file?)")
        data = self.file.read(n)
        if len(data) != n:
            raise CheckpointError("the file ended early")
        self.left -= n
        return data

    def readline(self) -> bytes:
        line = self.file.readline()
        self.left -= len(line)
        return line

    def readinto(self, buf: bytearray) -> int:  # not used by our opcodes; kept exact all the same
        data = self.read(len(buf))
        buf[:] = data
        return len(data)


# --- stand-ins for the allowed globals ------------------------------------------------------------


def _reconstruct_persistent_obj(meta: Any) -> PersistentMeta:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError("torch_utils.persistence object without a 'state' dict in its meta")
    return PersistentMeta(meta)


def _load_from_bytes(data: Any = None, *, budget: _Budget) -> Storage:
    """A legacy `torch.save` of one storage: magic, protocol, sys info, the record, its key, the bytes.

    The same payload object (a memo reference) gives the same storage, parsed once.
    """
    if type(data) is not bytes:
        raise UnsafePickleError("torch.storage._load_from_bytes: expected bytes")
    done = budget.storages.get(id(data))
    if done is not None and done[0] is data:
        return done[1]
    budget.heap(STORAGE_HEAP)
    storage = _parse_storage(data, budget)
    budget.storages[id(data)] = (data, storage)  # holding `data` keeps its id from being reused
    return storage


def _parse_storage(data: bytes, budget: _Budget) -> Storage:
    f = io.BytesIO(data)

    def part() -> Any:
        return _Unpickler(f, len(data) - f.tell(), budget, storage_record=True).load()

    if part() != _LEGACY_MAGIC or part() != _LEGACY_PROTOCOL:
        raise CheckpointError("a storage record is not in torch's legacy format")
    info = part()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise CheckpointError("a storage record is not little-endian (or has no sys info)")
    record = part()
    keys = part()
    if not isinstance(record, _StorageRecord) or keys != [record.key]:
        raise CheckpointError("a storage record does not hold exactly one storage")
    (numel,) = struct.unpack("<q", f.read(8).ljust(8, b"\xff"))
    elsize = torch.empty((), dtype=record.dtype).element_size()
    if numel != record.numel:
        raise CheckpointError(f"a storage record says {record.numel} elements but its data says {numel}")
    nbytes = numel * elsize
    if nbytes != len(data) - f.tell():
        raise CheckpointError(f"a storage record of {nbytes} bytes holds {len(data) - f.tell()}")
    budget.take(nbytes, "a storage")
    if nbytes == 0:
        return Storage(torch.UntypedStorage(0), 0, record.dtype)
    # frombuffer over our own copy: the storage is exactly these bytes and cannot be resized.
    raw = torch.frombuffer(bytearray(f.read(nbytes)), dtype=torch.uint8)
    return Storage(raw.untyped_storage(), nbytes, record.dtype)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype, budget: _Budget) -> torch.Tensor:
    """A view over `storage`, after checking that every element it can reach lies inside it; its
    bytes are counted whether or not other views share them."""
    if not isinstance(storage, Storage):
        raise UnsafePickleError(f"a tensor record references {short_repr(storage)}, not a storage from this file")
    offset = _check_int(offset, "tensor offset")
    size, stride = _int_tuple(size, "tensor size"), _int_tuple(stride, "tensor stride")
    if len(size) != len(stride):
        raise UnsafePickleError(f"a tensor record has {len(size)} sizes but {len(stride)} strides")
    capacity = storage.nbytes // torch.empty((), dtype=dtype).element_size()  # elements the storage holds
    numel = math.prod(size)
    if numel:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # highest element index reached
        if last >= capacity or numel > capacity:
            raise UnsafePickleError(f"a tensor record of size {list(size)} (offset {offset}, stride {list(stride)}) "
                                    f"is larger than its storage of {capacity} elements")
    budget.tensor(numel * torch.empty((), dtype=dtype).element_size())
    return torch.empty((0,), dtype=dtype).set_(storage.untyped, offset, size, stride)


def _rebuild_tensor_v2(storage=None, storage_offset=None, size=None, stride=None, requires_grad=False,
                       backward_hooks=None, metadata=None, *, budget: _Budget) -> torch.Tensor:
    dtype = storage.dtype if isinstance(storage, Storage) else torch.uint8
    return _tensor(storage, storage_offset, size, stride, dtype, budget)


def _rebuild_tensor_v3(storage=None, storage_offset=None, size=None, stride=None, requires_grad=False,
                       backward_hooks=None, dtype=None, metadata=None, *, budget: _Budget) -> torch.Tensor:
    if not any(dtype is d for d in _TORCH_DTYPES.values()):
        raise UnsafePickleError("torch._utils._rebuild_tensor_v3: dtype is not a plain torch dtype")
    return _tensor(storage, storage_offset, size, stride, dtype, budget)


def _rebuild_parameter(data=None, requires_grad=False, backward_hooks=None, state=None, *,
                       budget: _Budget) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("torch._utils._rebuild_parameter: data is not a tensor")
    return data  # the values are all we need; hooks and extra state are dropped (the tensor is counted already)


_SAFE_REBUILDERS = (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func=None, new_type=None, args=None, state=None, *, budget: _Budget) -> torch.Tensor:
    if not any(func is f for f in _SAFE_REBUILDERS) or new_type not in (_TENSOR, _PARAMETER) \
            or type(args) is not tuple:
        raise UnsafePickleError("torch._tensor._rebuild_from_type_v2 with a function or type outside the allow-list")
    return func(*args, budget=budget)


def _torch_size(dims=()) -> torch.Size:
    return torch.Size(_int_tuple(dims, "torch.Size"))


def _torch_device(kind=None, index=None) -> torch.device:
    if type(kind) is not str or len(kind) > 32 or not (index is None or type(index) is int and 0 <= index < 1024):
        raise UnsafePickleError("torch.device: expected a short device name")
    return torch.device(kind) if index is None else torch.device(kind, index)


def _simple_items(items: Any, what: str, budget: _Budget) -> list:
    if type(items) not in (list, tuple, set, frozenset):
        raise UnsafePickleError(f"{what}: expected a list of simple values, found {short_repr(items)}")
    budget.heap(_SET_HEAP + _SET_ITEM_HEAP * len(items))
    for item in items:
        _check_key(item, what)
    return list(items)


def _set(items=(), *, budget: _Budget) -> set:
    return set(_simple_items(items, "set", budget))


def _frozenset(items=(), *, budget: _Budget) -> frozenset:
    return frozenset(_simple_items(items, "frozenset", budget))


def _ordered_dict(items=(), *, budget: _Budget) -> OrderedDict:
    if type(items) not in (list, tuple) or any(type(p) not in (list, tuple) or len(p) != 2 for p in items):
        raise UnsafePickleError("collections.OrderedDict: expected a list of (key, value) pairs")
    budget.heap(_DICT_HEAP * 2 + _DICT_ITEM_HEAP * 2 * len(items))  # an OrderedDict keeps a second table
    out: OrderedDict = OrderedDict()
    for k, v in items:
        _check_key(k, "OrderedDict")
        out[k] = v
    return out


def _bytearray(data=b"", encoding=None, *, budget: _Budget) -> bytearray:
    if type(data) is bytes and encoding is None:
        budget.take(len(data), "a bytearray")  # a copy: the same bytes object may be referenced many times
        return bytearray(data)
    if type(data) is str and encoding in ("latin1", "latin-1"):  # protocol 2 writes bytearray(str, 'latin-1')
        budget.take(len(data), "a bytearray")
        return bytearray(data, "latin-1")
    raise UnsafePickleError("builtins.bytearray: only bytes (or latin-1 text) are allowed, never a length")


def _bytes(data=b"") -> bytes:  # protocol 2 writes b"" as bytes()
    if type(data) is not bytes:
        raise UnsafePickleError("builtins.bytes: only bytes are allowed, never a length")
    return data


def _codecs_encode(text=None, encoding="utf-8", *, budget: _Budget):
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode: only latin1 text (protocol-2 bytes) is allowed")
    # Protocol 2 writes every bytes object (each storage payload) this way. One memoized str may be
    # encoded many times: each str is encoded once, so its payload is also parsed once.
    done = budget.encoded.get(id(text))
    if done is not None and done[0] is text:
        return done[1]
    budget.heap(len(text))
    data = text.encode("latin1")
    budget.encoded[id(text)] = (text, data)
    return data


# --- numpy without numpy's pickle hooks -----------------------------------------------------------

# Plain numeric dtypes by the name numpy pickles them under (`numpy.dtype('f8', False, True)`).
_NUMPY_DTYPES = {name: np.dtype(name) for name in (
    "b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")}
_PLAIN_DTYPES = {dt.newbyteorder(order) for dt in _NUMPY_DTYPES.values() for order in "<>"}


def _plain_dtype(dt: Any, what: str) -> np.dtype:
    if type(dt) is _PendingDType:
        raise UnsafePickleError(f"{what}: a numpy dtype without its state")
    if not isinstance(dt, np.dtype) or dt not in _PLAIN_DTYPES or dt.hasobject or dt.names is not None \
            or dt.subdtype is not None or dt.kind not in "biufc":
        raise UnsafePickleError(f"{what}: only plain numeric dtypes are allowed")
    return dt


class _Pending:
    """priorlab's own record awaiting its BUILD; the memo keys it was stored under follow it."""

    def __init__(self) -> None:
        self.memo_keys: list[int] = []

    def build(self, state: Any, budget: _Budget) -> Any:
        raise NotImplementedError


_DTYPE_STATE_TYPES = [int, str, type(None), type(None), type(None), int, int, int]


def _empty_state(state: Any) -> bool:
    if state is None or (type(state) is dict and not state):
        return True
    return type(state) is tuple and len(state) == 2 and all(_empty_state(s) for s in state)


class _PendingDType(_Pending):
    def __init__(self, base: np.dtype) -> None:
        super().__init__()
        self.base = base

    def build(self, state: Any, budget: _Budget) -> np.dtype:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if type(state) is not tuple or len(state) != 8 or [type(v) for v in state] != _DTYPE_STATE_TYPES \
                or state[0] != 3 or state[5:] != (-1, -1, 0):
            raise UnsafePickleError("numpy dtype: only the state of a plain numeric dtype is allowed "
                                    "(no fields, subarrays or flags)")
        order = state[1]
        if self.base.itemsize == 1 and order == "|":
            return self.base
        if self.base.itemsize > 1 and order in ("<", ">"):
            return self.base.newbyteorder(order)
        raise UnsafePickleError(f"numpy dtype: byte order {short_repr(order)} for {self.base.str[1:]}")


class _PendingArray(_Pending):
    def build(self, state: Any, budget: _Budget) -> np.ndarray:
        # numpy's state: (version, shape, dtype, is_fortran, rawdata); older pickles leave out the version
        if type(state) is tuple and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if type(state) is not tuple or len(state) != 4:
            raise UnsafePickleError("numpy array: unexpected state layout")
        shape, dtype, fortran, raw = state
        shape = _int_tuple(shape, "numpy array shape")
        dtype = _plain_dtype(dtype, "numpy array")
        if type(fortran) is not bool or type(raw) is not bytes:
            raise UnsafePickleError("numpy array: only raw bytes of a plain dtype are allowed")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != len(raw):
            raise UnsafePickleError(f"numpy array of shape {list(shape)} needs {nbytes} bytes, "
                                    f"the record has {len(raw)}")
        budget.take(nbytes, "a numpy array")
        flat = np.frombuffer(raw, dtype=dtype) if nbytes else np.zeros(0, dtype=dtype)
        return flat.reshape(shape, order="F" if fortran else "C")


def _numpy_dtype(name=None, align=False, copy=True) -> _PendingDType:
    if type(name) is not str or name not in _NUMPY_DTYPES or type(align) is not bool or type(copy) is not bool:
        raise UnsafePickleError(f"numpy dtype {short_repr(name)}: only plain numeric dtypes are allowed "
                                f"({', '.join(_NUMPY_DTYPES)})")
    return _PendingDType(_NUMPY_DTYPES[name])


def _numpy_scalar(dtype=None, data=None) -> np.generic:
    dtype = _plain_dtype(dtype, "numpy scalar")
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise UnsafePickleError("numpy scalar: expected exactly one item's bytes")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(subtype=None, shape=None, dtype_code=None) -> _PendingArray:
    if subtype is not _NDARRAY or type(dtype_code) is not bytes:
        raise UnsafePickleError("numpy _reconstruct: only numpy.ndarray is allowed")
    return _PendingArray()  # shape and data come with its BUILD


ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR,
    ("torch.nn.parameter", "Parameter"): _PARAMETER,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _set,
    ("builtins", "frozenset"): _frozenset,
    ("builtins", "bytearray"): _bytearray,
    ("builtins", "bytes"): _bytes,
    ("_codecs", "encode"): _codecs_encode,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
}

for _name in ("set", "frozenset", "bytearray", "bytes"):  # protocol 0-2 spell builtins as Python 2's `__builtin__`
    ALLOWED[("__builtin__", _name)] = ALLOWED[("builtins", _name)]

# What REDUCE may call: the stand-in functions above (EasyDict only through NEWOBJ).
_CALLABLE = tuple(v for v in ALLOWED.values() if callable(v) and v is not EasyDict and not isinstance(v, _Token))
# Those that build something new from their arguments: they are given the load's `budget`.
_BUDGETED = (_load_from_bytes, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_from_type_v2,
             _set, _frozenset, _ordered_dict, _bytearray, _codecs_encode)


# --- loading --------------------------------------------------------------------------------------


def load_pickle(path: str | Path) -> Any:
    """Unpickle with the allow-list. Any failure: `CheckpointError` (`UnsafePickleError` if refused)."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise CheckpointError("the file is empty")
        with open(path, "rb") as f:
            return _Unpickler(f, size, _Budget(size)).load()
    except CheckpointError as e:
        raise type(e)(one_line(f"{path}: {e}")) from None
    except OSError as e:
        raise CheckpointError(one_line(f"{path}: cannot read the file ({e.strerror or e})")) from None
    except Exception as e:  # any other failure while parsing is a corrupt file, said in one line
        raise CheckpointError(one_line(f"{path}: not a readable NVIDIA pickle ({type(e).__name__}: {e})")) from None


def flatten_state(meta: PersistentMeta, prefix: str = "", _seen: set | None = None) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a persisted module tree as a flat `state_dict` (each module once)."""
    seen = set() if _seen is None else _seen
    if id(meta) in seen:
        raise CheckpointError(f"module {prefix.rstrip('.') or 'root'!r} appears twice in the pickled network")
    seen.add(id(meta))
    state = meta["state"]
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        values = state.get(group) or {}
        if not isinstance(values, dict):
            raise CheckpointError(f"{prefix}{group}: expected a dict, found {short_repr(values)}")
        for name, value in values.items():
            if value is None:
                continue
            if type(name) is not str or not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{short_repr(name)}: expected a named tensor, found {short_repr(value)}")
            out[prefix + name] = value
    modules = state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise CheckpointError(f"{prefix}_modules: expected a dict, found {short_repr(modules)}")
    for name, sub in modules.items():
        if sub is None:
            continue
        if type(name) is not str or not isinstance(sub, PersistentMeta):
            raise CheckpointError(f"{prefix}{short_repr(name)}: submodule is not a persisted NVIDIA module "
                                  f"({short_repr(sub)})")
        out.update(flatten_state(sub, prefix=f"{prefix}{name}.", _seen=seen))
    return out


def submodule(meta: PersistentMeta, path: str) -> PersistentMeta:
    """`submodule(G, "synthesis.b4.conv1")` -> that module's meta."""
    for part in path.split("."):
        modules = meta["state"].get("_modules") or {}
        if not isinstance(modules, dict) or part not in modules or not isinstance(modules[part], PersistentMeta):
            raise CheckpointError(f"the pickled generator has no module {path!r} (missing {part!r})")
        meta = modules[part]
    return meta


def attr(meta: PersistentMeta, name: str, default: Any = None) -> Any:
    return meta["state"].get(name, default)


PLAIN_LIMIT = 100_000  # entries a config may expand to (NVIDIA's `_init_kwargs` have a few dozen)


def plain(value: Any) -> Any:
    """numpy scalars and EasyDicts -> Python numbers and dicts (for configs).

    Each container is converted once, and the size of the tree it stands for is counted: a
    value shared by many parents (a few hundred bytes of pickle can reference one list 2**40
    times over) is refused past `PLAIN_LIMIT` entries instead of being walked; a cycle is an error.
    """
    return _plain(value, {})[0]


def _plain(value: Any, done: dict[int, Any]) -> tuple[Any, int]:
    if isinstance(value, (dict, list, tuple)):
        key = id(value)
        if key in done:
            if done[key] is _IN_PROGRESS:
                raise CheckpointError("a config value contains itself")
            return done[key]
        done[key] = _IN_PROGRESS
        total = 1
        items = value.items() if isinstance(value, dict) else enumerate(value)
        out: Any = {} if isinstance(value, dict) else []
        for k, v in items:
            converted, n = _plain(v, done)
            total += n
            if total > PLAIN_LIMIT:
                raise CheckpointError(f"a config value expands to more than {PLAIN_LIMIT} entries through shared "
                                      f"references (a decompression bomb?)")
            if isinstance(out, dict):
                out[k] = converted
            else:
                out.append(converted)
        done[key] = (out, total)
        return out, total
    if isinstance(value, np.generic):
        return value.item(), 1
    return value, 1


_IN_PROGRESS = object()
