"""User code named as `package.module:function`: architectures, losses (and classifiers).

A plug-in is imported by name, so the same string works in a config, on the command line and
on every node of a cluster. The module must be importable where the sweep is started; the
sweep ships it to the nodes (Ray's `runtime_env`, see `cluster/runtime.py`), so a module that
lives only in the user's project folder needs no copying by hand.

    resolve("mypkg.nets:unet")  -> the function object
    module_root("mypkg.nets")   -> the folder or file to ship (the top-level package)
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_plugin(name: Any) -> bool:
    """True for a `package.module:function` string (the built-in names have no colon)."""
    return isinstance(name, str) and ":" in name


# What a user whose plug-in does not import most often lacks: its folder on the import path.
PYTHONPATH_HINT = "is its folder on PYTHONPATH? (e.g. PYTHONPATH=path/to/folder priorlab ...)"


def resolve(spec: str) -> Callable[..., Any]:
    """Import `package.module:function`; ValueError with one line naming what went wrong."""
    if not SPEC.match(spec):
        raise ValueError(f"{spec!r} is not of the form package.module:function")
    module_name, func_name = spec.split(":")
    try:
        # A module that prints when imported (`this` prints the Zen of Python) would write
        # into the middle of the CLI's output; what it prints is dropped.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or an error raised while the module runs
        raise ValueError(f"{spec!r}: cannot import {module_name!r} ({type(e).__name__}: {e}); "
                         f"{PYTHONPATH_HINT}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"{spec!r}: module {module_name!r} has no function {func_name!r}")
    return func


def module_root(module_name: str) -> Path | None:
    """The top-level package folder (or single-file module) holding `module_name`, when it is
    user code that a cluster node may lack; None for priorlab itself, the standard library and
    installed packages (those every node has from its own install)."""
    top = module_name.split(".")[0]
    if top in ("tasks", "analysis", "cluster", "dashboard"):
        return None
    module = sys.modules.get(top) or importlib.import_module(top)
    origin = getattr(module, "__file__", None)
    if origin is None:
        return None
    path = Path(origin).resolve()
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib")}
    if any(path.is_relative_to(p) for p in installed):
        return None
    return path.parent if path.name == "__init__.py" else path
