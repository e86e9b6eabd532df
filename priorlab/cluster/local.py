"""One task run on this machine, without Ray: `priorlab dip`, `priorlab baseline`.

Before anything is recorded, `preflight` checks what only this machine can tell: that the
asked-for device exists here (a sweep's params are validated on a driver that may have no GPU
while its workers do, so this is not the params model's job) and that the image decodes.
"""

from __future__ import annotations

import socket
import traceback
from pathlib import Path
from typing import Any

from priorlab.analysis import claims
from priorlab.analysis.store import Store
from priorlab.cluster.expand import run_id as make_run_id
from priorlab.cluster.sinks import DirSink, ProgressSink, StoreSink, TeeSink
from priorlab.tasks.registry import KINDS


class LocalRunError(ValueError):
    """Found before the run started (nothing recorded): a device this machine lacks, an unreadable image."""


def check_device_here(device: str) -> None:
    """A torch device string that this machine can use, or LocalRunError naming what it has."""
    import torch

    if device == "auto":
        return
    dev = torch.device(device)  # the params model already refused a malformed name
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LocalRunError(f"--device {device!r}: this machine has no CUDA device (use auto or cpu)")
        if dev.index is not None and dev.index >= count:
            raise LocalRunError(f"--device {device!r}: this machine has {count} CUDA device(s) "
                                f"(allowed: cuda:0..cuda:{count - 1}, auto, cpu)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LocalRunError(f"--device {device!r}: MPS is not available here (use auto or cpu)")


def check_image_decodes(name: str, field: str = "image") -> None:
    """The image is checked once now (the sweep's own check: decodes, within the size limits),
    so a text file or a corrupt PNG fails in one line, not mid-run."""
    from priorlab.tasks.images import BUNDLED, check_image_file

    if name in BUNDLED:
        return
    try:
        check_image_file(name, field)
    except ValueError as e:
        raise LocalRunError(f"--{e}") from None


def preflight(params: Any) -> None:
    device = getattr(params, "device", None)
    if isinstance(device, str):
        check_device_here(device)
    files = params.input_files() if hasattr(params, "input_files") else []
    for f in files:  # the image files the params model declares (tasks/inputs.py)
        if f.kind == "image":
            check_image_decodes(f.name, f.field)


def run_local(kind: str, params: Any, out: str | Path | None = None, store_dir: str | Path | None = None,
              artifacts: str | None = None) -> dict:
    """Run `params` (a validated model) of `kind`; write to a folder and/or the store.

    Raises LocalRunError, before anything is written, when this machine cannot run it."""
    preflight(params)
    dumped = params.model_dump(mode="json")
    rid = make_run_id(kind, dumped)
    folder = DirSink(out) if out else None
    store = Store(store_dir, artifacts=artifacts) if store_dir else None
    if store is not None:
        # A single run belongs to a sweep named after its kind, so the dashboard lists it.
        sweep = f"local-{kind}"
        store.upsert_sweep(sweep, "", socket.gethostname())
        store.register_runs(sweep, [{"run_id": rid, "kind": kind, "params": dumped}])
        owner = claims.owner_id()
        if not store.start_run(rid, node=socket.gethostname(), force=True, owner=owner):  # asked for by name
            raise LocalRunError(f"run {rid} is being run by a sweep on {store_dir} right now; "
                                "wait for it (or use another --store)")
        lease = claims.Lease(store, owner)
    progress = ProgressSink(total=dumped.get("iterations"), desc=f"{kind} {rid[:8]}")
    stored = StoreSink(store, rid) if store else None
    sink = TeeSink(folder, stored, progress)
    try:
        summary = KINDS[kind].run(params, sink)
    except BaseException as e:
        if store is not None:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
            store.finish_run(rid, status, error=traceback.format_exc(), owner=owner)
        raise
    finally:
        progress.close()
        if store is not None:
            lease.stop()
    if folder is not None:
        folder.finish(summary, dumped, kind, rid)
    if store is not None:
        store.finish_run(rid, summary.get("status", "done"), summary=summary, owner=owner, sent=stored.sent())
        store.set_sweep_status(f"local-{kind}", "done")
    return {"run_id": rid, **summary}
