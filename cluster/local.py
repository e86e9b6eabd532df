"""One task run on this machine, without Ray: `priorlab dip`, `priorlab baseline`."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path
from typing import Any

from analysis.store import Store
from cluster.config import run_id as make_run_id
from cluster.sinks import DirSink, ProgressSink, StoreSink, TeeSink
from tasks.registry import KINDS


def run_local(kind: str, params: Any, out: str | Path | None = None, store_dir: str | Path | None = None) -> dict:
    """Run `params` (a validated model) of `kind`; write to a folder and/or the store."""
    dumped = params.model_dump(mode="json")
    rid = make_run_id(kind, dumped)
    folder = DirSink(out) if out else None
    store = Store(store_dir) if store_dir else None
    if store is not None:
        # A single run belongs to a sweep named after its kind, so the dashboard lists it.
        sweep = f"local-{kind}"
        store.upsert_sweep(sweep, "", socket.gethostname())
        store.register_runs(sweep, [{"run_id": rid, "kind": kind, "params": dumped}])
        store.start_run(rid, node=socket.gethostname(), force=True)  # asked for by name: always runs
    progress = ProgressSink(total=dumped.get("iterations"), desc=f"{kind} {rid[:8]}")
    sink = TeeSink(folder, StoreSink(store, rid) if store else None, progress)
    try:
        summary = KINDS[kind].run(params, sink)
    except BaseException as e:
        if store is not None:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
            store.finish_run(rid, status, error=traceback.format_exc())
        raise
    finally:
        progress.close()
    if folder is not None:
        folder.finish(summary, dumped, kind, rid)
    if store is not None:
        store.finish_run(rid, summary.get("status", "done"), summary=summary)
        store.set_sweep_status(f"local-{kind}", "done")
    return {"run_id": rid, **summary}
