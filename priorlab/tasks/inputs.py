"""Input files: the files a run reads (an image, a generator checkpoint, a classifier, ...).

Each parameter model declares the files it names with `input_files() -> [InputFile]`. One
process-wide table says where this process finds each named file (`provide`, `resolve`):

- on the sweep driver, the user's own file (a relative name resolves against the config
  file's folder while the config is expanded, `relative_to`; everywhere else against the
  current folder);
- inside a trial on any node, a local copy of the driver's bytes that `priorlab.cluster.inputs`
  fetched from Ray's object store, so no node needs the user's paths.

Loaders never open a user path directly: they open `resolve(name)`. Names stay as the user
wrote them in the parameters (so a run id does not depend on where the project folder lies)
and in messages. `check(file)` is the driver's one look at each file before anything starts:
it exists, is not too large, and loads with the same loader a trial uses (for a pickle, the
restricted unpickler's own refusal of a hostile file). No Ray here: this is `tasks/`.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator, Literal, NamedTuple

# What kind of file a field names, i.e. which loader reads it.
FileKind = Literal["image", "generator", "torchscript", "state_dict", "normals"]

# The largest model file a run may name (an FFHQ-1024 pickle is ~380 MB). It travels through
# Ray's object store, whose default size is 30% of a node's memory: a larger file is a mistake.
MAX_INPUT_BYTES = 2_000_000_000


class InputFile(NamedTuple):
    field: str  # where the parameters name it: "image", "generator", "classifier.weights"
    name: str  # the path as written (no "#KEY" suffix)
    kind: FileKind
    key: str = ""  # a pickle's network key (generator "PATH.pkl#G_ema")


_LOCAL: dict[str, Path] = {}  # name as written -> where this process finds its bytes
_LOCK = threading.Lock()
_BASE = threading.local()  # the folder relative names resolve against (a config's folder)


def provide(name: str, path: str | Path) -> None:
    """From now on `name` means the file at `path` in this process."""
    with _LOCK:
        _LOCAL[name] = Path(path)


def provided(name: str) -> bool:
    return name in _LOCAL


@contextlib.contextmanager
def relative_to(folder: str | Path | None) -> Iterator[None]:
    """Inside this block names are the user's paths, relative ones against `folder` (a sweep
    config's folder; None: the current folder), whatever was provided before."""
    before = getattr(_BASE, "state", None)
    _BASE.state = (Path(folder) if folder is not None else None,)
    try:
        yield
    finally:
        _BASE.state = before


def resolve(name: str) -> Path:
    """Where this process reads `name`: the user's path while a config is being expanded
    (`relative_to`), else a provided copy, else the path relative to the current folder."""
    state = getattr(_BASE, "state", None)
    path = Path(name).expanduser()
    if state is not None:
        base = state[0]
        return base / path if base is not None and not path.is_absolute() else path
    with _LOCK:
        local = _LOCAL.get(name)
    return local if local is not None else path


def exists(name: str) -> bool:
    return resolve(name).is_file()


def check(f: InputFile) -> None:
    """Raise ValueError (one line naming the field and the file) unless `f` is a file of its
    kind that loads here within the limits. Loads exactly as a trial will."""
    path = resolve(f.name)
    where = f"{f.field} {f.name!r}"
    if not path.is_file():
        hint = "" if Path(f.name).expanduser().is_absolute() else \
            f" (looked for {path}: a relative path is read from the config file's folder)"
        raise ValueError(f"{where}: no such file{hint}")
    if f.kind == "image":
        from priorlab.tasks.images import check_image_file

        try:
            check_image_file(str(path))
        except ValueError as e:
            raise ValueError(f"{f.field} {f.name!r}: {str(e).split(': ', 1)[-1]}") from None
        return
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"{where}: {size:,} bytes is larger than the limit of {MAX_INPUT_BYTES:,}")
    try:
        _load(f, path)
    except Exception as e:  # every loader's own refusal, as one line
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ValueError(f"{where}: cannot be loaded as a {_WHAT[f.kind]} ({reason})") from None


_WHAT = {"generator": "generator checkpoint", "torchscript": "TorchScript module",
         "state_dict": "weights file (torch.load, weights only)", "normals": "normals .npz (arrays z and/or w)"}


def _load(f: InputFile, path: Path) -> None:
    import torch

    if f.kind == "generator":
        from priorlab.tasks.stylegan.checkpoints import load_generator

        load_generator(str(path) + (f"#{f.key}" if f.key else ""), device="cpu")
    elif f.kind == "torchscript":
        torch.jit.load(str(path), map_location="cpu")
    elif f.kind == "state_dict":
        torch.load(str(path), map_location="cpu", weights_only=True)
    elif f.kind == "normals":
        from priorlab.tasks.stylegan.jobs.direction import load_normals

        if not load_normals(path):
            raise ValueError("it holds neither a 'z' nor a 'w' array")
