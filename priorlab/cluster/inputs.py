"""Input files through Ray: checked once on the driver, shipped by the object store, content-hashed.

The driver gathers every file the trials' parameter models declare (`priorlab.tasks.inputs`),
checks each once before anything starts, hashes its bytes and puts them into Ray's object
store (`ship`). A trial, on whichever node, writes each file it needs once per node into a
content-addressed cache (`<tmp>/priorlab-inputs/<sha256>/<file name>`) and points the tasks'
table at that copy (`materialize`), so no node needs the user's paths.

Why the object store and not runtime_env: runtime_env packages (working_dir, py_modules) are
zipped by the driver, held in the head node's GCS and unpacked per job on every node, with
a size cap that an FFHQ pickle (~380 MB) already strains; the object store streams a file
node to node on demand, only to nodes that run a trial needing it, spills to disk under
memory pressure, and lives as long as the sweep's driver holds its reference. Each file is
its own object, put as a uint8 array so a trial reads it zero-copy from the node's shared
memory. Plug-in code (`module:function`) still travels by runtime_env: it must be importable.

Each run's summary keeps the hashes of the files it read (`input_sha256`: a JSON object of
field -> sha256), so a sweep resumed after a file changed under a done run says so and stops
(`changed`) instead of mixing results from two different files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from priorlab.tasks import inputs as task_inputs
from priorlab.tasks.registry import KINDS
from priorlab.vocab import INPUT_SHA256 as SUMMARY_KEY  # JSON {field: sha256} of the files a run read


@dataclass(frozen=True)
class InputInfo:
    """One checked input file: the name as written, where the driver read it, its bytes' hash."""

    name: str
    path: str
    kind: str
    fields: tuple[str, ...]
    size: int
    sha256: str


# (resolved path, size, mtime_ns, kind, key) -> sha256: each file is checked and hashed once per driver.
_CHECKED: dict[tuple, str] = {}


def declared(trials: list[dict[str, Any]]) -> list[task_inputs.InputFile]:
    """Every input file the trials' parameters name (one entry per field and name)."""
    seen: dict[tuple[str, str], task_inputs.InputFile] = {}
    for t in trials:
        for f in _files(t):
            seen.setdefault((f.field, f.name), f)
    return list(seen.values())


def _files(trial: dict[str, Any]) -> list[task_inputs.InputFile]:
    return KINDS[trial["kind"]].params(**trial["params"]).input_files()


def gather(trials: list[dict[str, Any]], base: str | Path | None = None) -> list[InputInfo]:
    """Check and hash every input file the trials name; raise ValueError (one line) for the
    first that is missing, too large or does not load. Relative names resolve against `base`
    (the config file's folder); from now on this process reads each name from its file."""
    by_name: dict[str, list[task_inputs.InputFile]] = {}
    with task_inputs.relative_to(base):
        for f in declared(trials):
            by_name.setdefault(f.name, []).append(f)
        out = []
        for name, files in by_name.items():  # in the order the parameters name them
            path = task_inputs.resolve(name)
            for f in files:  # each declaration: a key or a kind may differ per field
                sha = _checked(f, path)
            stat = path.stat()
            out.append(InputInfo(name, str(path.absolute()), files[0].kind, tuple(sorted({f.field for f in files})),
                                 stat.st_size, sha))
    for info in out:  # the driver's later params checks (resume, packing) find the same files
        task_inputs.provide(info.name, info.path)
    return out


def _checked(f: task_inputs.InputFile, path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns, f.kind, f.key) if stat else None
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    task_inputs.check(f)  # raises ValueError naming the field and the file
    sha = sha256_file(path)
    if key is not None:
        _CHECKED[key] = sha
    return sha


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ship(infos: list[InputInfo]) -> dict[str, dict[str, Any]]:
    """Put each file's bytes into Ray's object store: {name: {"sha256", "file", "ref"}}, small
    enough to travel in every trial's parameters (the bytes travel once per node, on demand)."""
    import numpy as np
    import ray

    out = {}
    for info in infos:
        data = np.fromfile(info.path, dtype=np.uint8)
        if hashlib.sha256(data.tobytes()).hexdigest() != info.sha256:
            raise ValueError(f"{info.fields[0]} {info.name!r}: the file changed while the sweep started; run it again")
        out[info.name] = {"sha256": info.sha256, "file": Path(info.name).name, "ref": ray.put(data)}
    return out


def cache_dir() -> Path:
    """This node's copy of shipped files (PRIORLAB_INPUT_CACHE, else the system temp folder)."""
    root = os.environ.get("PRIORLAB_INPUT_CACHE") or Path(tempfile.gettempdir()) / f"priorlab-inputs-{os.getuid()}"
    return Path(root)


def materialize(shipped: dict[str, dict[str, Any]] | None) -> None:
    """In a trial: make every shipped file readable here under its name (one copy per node)."""
    import ray

    for name, item in (shipped or {}).items():
        target = cache_dir() / item["sha256"] / item["file"]
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            data = ray.get(item["ref"])  # (N,) uint8, read from this node's object store
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(memoryview(data))
            os.replace(tmp, target)  # atomic: trials on this node never see half a file
        task_inputs.provide(name, target)


def run_hashes(params, shipped: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """The summary entry of a run: {SUMMARY_KEY: JSON {field: sha256}} of the files it read."""
    files = {f.field: shipped[f.name]["sha256"] for f in params.input_files() if shipped and f.name in shipped}
    return {SUMMARY_KEY: json.dumps(files, sort_keys=True)} if files else {}


def changed(store, trials: list[dict[str, Any]], infos: list[InputInfo]) -> str | None:
    """A one-line message when a done run of these trials read a file whose bytes differ now."""
    now = {i.name: i.sha256 for i in infos}
    if not now or store is None:
        return None
    ids = {t["run_id"]: t for t in trials}
    runs = store.runs(status="done")
    if runs.empty or SUMMARY_KEY not in runs.columns:
        return None
    for _, r in runs[runs["run_id"].isin(list(ids))].iterrows():
        stored = r.get(SUMMARY_KEY)
        if not isinstance(stored, str):
            continue
        then = json.loads(stored)
        for f in _files(ids[r["run_id"]]):
            if f.field in then and f.name in now and then[f.field] != now[f.name]:
                return (f"{f.field} {f.name!r} changed since run {r['run_id']} was done with it (sha256 "
                        f"{then[f.field][:12]} then, {now[f.name][:12]} now); restore the file, give the sweep a "
                        "new `name:`, or pass --force to rerun its runs with the new file")
    return None


def describe(infos: list[InputInfo]) -> list[str]:
    """`--plan`'s lines: one per input file, with its size and hash."""
    lines = []
    for i in infos:
        lines.append(f"  {', '.join(i.fields):<20} {i.name}  {describe_size(i.size)}  sha256 {i.sha256[:12]}  ({i.kind})")
    return lines


def describe_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)
