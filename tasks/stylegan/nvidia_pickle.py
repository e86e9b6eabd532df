"""Reading NVIDIA stylegan2-ada-pytorch pickles without running any code stored in them.

Their `.pkl` files are `pickle.dump`s of `torch_utils.persistence` classes: each module
pickles as `_reconstruct_persistent_obj(meta)` where `meta` holds the source code of its
Python module (`module_src`, normally `exec`-ed on load), `class_name` and `state` (the
module's `__dict__`: `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...). Tensors
pickle as `torch._utils._rebuild_tensor_v2(storage, ...)` with each storage as
`torch.storage._load_from_bytes(bytes)`, the bytes being a legacy `torch.save` of that storage.

`RestrictedUnpickler` resolves only an allow-list of globals, each mapped to a safe stand-in:
the persistence hook returns the meta dict (`module_src` is kept as text, never executed),
storages load through `torch.load(weights_only=True)`, tensor hooks are dropped. Any other
global (`os.system`, `builtins.eval`, ...) stops the load with `UnsafePickleError` before
it can be called.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list; nothing from it was called."""


class PersistentMeta(dict):
    """What `_reconstruct_persistent_obj(meta)` gives here: the meta dict itself.

    Keys: `type`, `version`, `module_src` (text, never executed), `class_name`, `state`.
    """


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access in NVIDIA's code)."""


class _TypeToken:
    """Stands for an allowed class in `_rebuild_from_type_v2`; it cannot be called."""

    def __init__(self, name: str) -> None:
        self.name = name


_TENSOR = _TypeToken("torch.Tensor")
_PARAMETER = _TypeToken("torch.nn.Parameter")


def _reconstruct_persistent_obj(meta: dict) -> PersistentMeta:
    if not isinstance(meta, dict) or "state" not in meta:
        raise UnsafePickleError("torch_utils.persistence object without a 'state' in its meta")
    return PersistentMeta(meta)


def _load_from_bytes(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("torch.storage._load_from_bytes: expected bytes")
    storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a storage record held {type(storage).__name__}, not a torch storage")
    return storage


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a tensor record references {type(storage).__name__}, not a torch storage")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> torch.Tensor:
    _check_storage(storage)
    return torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None) -> torch.Tensor:
    _check_storage(storage)
    if not isinstance(dtype, torch.dtype):
        raise UnsafePickleError("torch._utils._rebuild_tensor_v3: dtype is not a torch.dtype")
    return torch._utils._rebuild_tensor_v3(storage, int(storage_offset), tuple(size), tuple(stride), False,
                                           OrderedDict(), dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("torch._utils._rebuild_parameter: data is not a tensor")
    return data  # the values are all we need; hooks and extra state are dropped


_SAFE_REBUILDERS = {_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter}


def _rebuild_from_type_v2(func, new_type, args, state) -> torch.Tensor:
    if func not in _SAFE_REBUILDERS or new_type not in (_TENSOR, _PARAMETER):
        raise UnsafePickleError("torch._tensor._rebuild_from_type_v2 with a function or type outside the allow-list")
    return func(*args)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("numpy scalar: only plain numeric dtypes are allowed")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafePickleError("numpy _reconstruct: only numpy.ndarray is allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError("_codecs.encode: only latin1 text (protocol-2 bytes) is allowed")
    return text.encode("latin1")


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}

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
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): _codecs_encode,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `ALLOWED` globals (and torch dtypes such as `torch.float32`)."""

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED.get((module, name))
        if target is not None:
            return target
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.startswith("numpy") and name.endswith("DType"):  # numpy 2 dtype classes, e.g. Float32DType
            return _numpy_dtype_class(module, name)
        raise UnsafePickleError(
            f"refusing global {module}.{name}: this pickle may run code when loaded; only tensor and "
            f"container rebuilders are allowed ({', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED))})"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"unexpected persistent id {pid!r} in a plain pickle")


def _numpy_dtype_class(module: str, name: str) -> Any:
    import numpy.dtypes

    cls = getattr(numpy.dtypes, name, None)
    if not isinstance(cls, type) or not issubclass(cls, np.dtype) or name == "ObjectDType":
        raise UnsafePickleError(f"refusing global {module}.{name}")
    return cls


def load_pickle(path: str | Path) -> Any:
    """Unpickle with the allow-list. Raises `UnsafePickleError` on any other global."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f).load()


def flatten_state(meta: PersistentMeta, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and buffers of a persisted module tree as a flat `state_dict`."""
    state = meta["state"]
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix}{name}: expected a tensor, found {type(value).__name__}")
            out[prefix + name] = value
    for name, sub in (state.get("_modules") or {}).items():
        if sub is None:
            continue
        if not isinstance(sub, PersistentMeta):
            raise ValueError(f"{prefix}{name}: submodule is not a persisted NVIDIA module ({type(sub).__name__})")
        out.update(flatten_state(sub, prefix=f"{prefix}{name}."))
    return out


def submodule(meta: PersistentMeta, path: str) -> PersistentMeta:
    """`submodule(G, "synthesis.b4.conv1")` -> that module's meta."""
    for part in path.split("."):
        modules = meta["state"].get("_modules") or {}
        if part not in modules or not isinstance(modules[part], PersistentMeta):
            raise ValueError(f"the pickled generator has no module {path!r} (missing {part!r})")
        meta = modules[part]
    return meta


def attr(meta: PersistentMeta, name: str, default: Any = None) -> Any:
    return meta["state"].get(name, default)


def plain(value: Any) -> Any:
    """numpy scalars and EasyDicts -> Python numbers and dicts (for configs)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

