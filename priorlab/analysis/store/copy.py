"""`priorlab store copy SRC DST`: move a store between backends (a SQLite folder ⇄ PostgreSQL +
object storage), idempotent and resumable, checked by `priorlab check` at the end.

DST ends up holding every sweep, run, metric and artifact of SRC, with their times and
attempts as they were (a copy, not a rerun). Runs go over in chunks: first the chunk's files
(content-addressed, so a file DST holds already is not sent again), then all of the chunk's
rows in one transaction. An interrupted copy therefore leaves whole runs or none of a chunk
(at worst a few files no row uses yet, which the next copy uses or `check --repair` removes),
and the same command continues: runs DST already holds in the same state are skipped.
The source is opened read-only. Shard files of unfinished sharded runs are not copied (the
run scores them again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from priorlab.analysis.store import Store
from priorlab.analysis.store.records import _dumps

CHUNK = 200  # runs per transaction
RUN_FIELDS = ("run_id", "kind", "params", "status", "error", "node", "attempts",
              "created_at", "started_at", "finished_at", "summary")
SWEEP_FIELDS = ("name", "config", "status", "host", "created_at", "updated_at", "finished_at")


def copy_store(src: str | os.PathLike, dst: str | os.PathLike, *, src_artifacts: str | None = None,
               artifacts: str | None = None, echo: Callable[[str], None] = lambda line: None):
    """Copy `src` into `dst`; return `check_store`'s report on `dst`."""
    from priorlab.analysis.check import check_store

    source = Store(src, readonly=True, artifacts=src_artifacts)
    target = Store(dst, artifacts=artifacts)
    _copy_sweeps(source, target)
    with source.db.reader() as c:
        rows = c.execute(f"SELECT {', '.join(RUN_FIELDS)} FROM runs ORDER BY run_id").fetchall()
    with target.db.reader() as c:
        have = {r[0]: tuple(r[1:]) for r in c.execute(
            "SELECT run_id, status, attempts, finished_at FROM runs").fetchall()}
    todo = [r for r in rows if have.get(r[0]) != (r[3], r[6], r[9])]
    echo(f"store copy: {len(rows)} runs in {source.where}, {len(rows) - len(todo)} already in "
         f"{target.where}, {len(todo)} to copy")
    for i in range(0, len(todo), CHUNK):
        _copy_runs(source, target, todo[i:i + CHUNK])
        echo(f"store copy: {min(i + CHUNK, len(todo))}/{len(todo)} runs")
    _copy_links(source, target)
    target.close()
    return check_store(dst, artifacts=artifacts)


def _copy_sweeps(source: Store, target: Store) -> None:
    with source.db.reader() as c:
        sweeps = c.execute(f"SELECT {', '.join(SWEEP_FIELDS)} FROM sweeps").fetchall()
        configs = c.execute("SELECT sweep, config, added_at FROM sweep_configs").fetchall()
    cols = ", ".join(SWEEP_FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in SWEEP_FIELDS[1:])
    with target.batch() as c:
        if sweeps:
            c.executemany(f"""INSERT INTO sweeps({cols}) VALUES ({', '.join('?' * len(SWEEP_FIELDS))})
                              ON CONFLICT(name) DO UPDATE SET {updates}""", sweeps)
        if configs:
            c.executemany("""INSERT INTO sweep_configs(sweep, config, added_at) VALUES (?, ?, ?)
                             ON CONFLICT DO NOTHING""", configs)


def _copy_runs(source: Store, target: Store, runs: list[tuple]) -> None:
    ids = json.dumps([r[0] for r in runs])
    with source.db.reader() as c:
        metrics = c.execute("""SELECT run_id, step, name, value FROM metrics
                               WHERE run_id IN (SELECT value FROM json_each(?))""", (ids,)).fetchall()
        arts = c.execute("""SELECT run_id, step, name, sha256, width, height FROM artifacts
                            WHERE run_id IN (SELECT value FROM json_each(?))""", (ids,)).fetchall()
    for sha in sorted({a[3] for a in arts}):  # files first: a row never points at nothing
        data = source.files.read_artifact(sha, verify=True, hint=source.where)
        if data is not None:  # a file SRC lost stays lost; `check` on DST names its runs
            target.files.put_artifact(data)
    params = []
    for r in runs:
        for name, value in json.loads(r[2] or "{}").items():
            params.append((r[0], name, target.db.param_value(value)))
    cols = ", ".join(RUN_FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in RUN_FIELDS[1:])
    with target.batch() as c:
        c.executemany(f"""INSERT INTO runs({cols}) VALUES ({', '.join('?' * len(RUN_FIELDS))})
                          ON CONFLICT(run_id) DO UPDATE SET {updates}""", [_run_row(r) for r in runs])
        c.execute("DELETE FROM metrics WHERE run_id IN (SELECT value FROM json_each(?))", (ids,))
        c.execute("DELETE FROM artifacts WHERE run_id IN (SELECT value FROM json_each(?))", (ids,))
        if params:
            c.executemany("INSERT INTO run_params(run_id, name, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                          params)
        if metrics:
            c.executemany("INSERT INTO metrics(run_id, step, name, value) VALUES (?, ?, ?, ?)", metrics)
        if arts:
            c.executemany("INSERT INTO artifacts(run_id, step, name, sha256, width, height) VALUES (?, ?, ?, ?, ?, ?)",
                          arts)


def _run_row(r: tuple) -> tuple:
    # JSON columns are text in both databases; re-encode so a copy is byte-identical either way.
    params = _dumps(json.loads(r[2])) if r[2] else "{}"
    summary = None if r[10] is None else _dumps(json.loads(r[10]))
    return (*r[:2], params, *r[3:10], summary)


def _copy_links(source: Store, target: Store) -> None:
    with source.db.reader() as c:
        links = c.execute("SELECT sweep, run_id, added_at FROM sweep_runs").fetchall()
    with target.batch() as c:
        if links:
            c.executemany("INSERT INTO sweep_runs(sweep, run_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                          links)
