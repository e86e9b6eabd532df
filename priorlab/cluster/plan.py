"""`priorlab sweep CONFIG --plan`: print what the sweep would run, and run nothing.

What runs comes from `work.decide`, the very decision `priorlab sweep` acts on: the same
refusal of a changed config under a stored name, the same skipped runs (done and pruned), the
same `--only`, the same packs and StyleGAN shard trials. Each trial line names the values that
set it apart from the sweep's other trials (sampled values included), and a pack names what
its members share and which parameters differ among them. How many trials run at once comes
from the cluster the sweep would use (`packing.capacity`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from priorlab.cluster import packing
from priorlab.cluster.config import ray_resources
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.items import PackItem, ShardItem, WorkItem
from priorlab.cluster.tables import num_text
from priorlab.cluster.work import Work, decide


def value_text(v: Any) -> str:
    """A value with its significant digits (1e-4 stays 0.0001, not 0.00), never clipped."""
    if isinstance(v, list):
        return ",".join(value_text(x) for x in v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{value_text(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "none"
    return num_text(v) if isinstance(v, (int, float)) else str(v)


def _axes(trials: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per kind, the parameters whose value differs between its trials (what sets a trial apart;
    a parameter another kind lacks is not an axis for that)."""
    seen: dict[str, dict[str, set[str]]] = {}
    for t in trials:
        for k, v in t["params"].items():
            seen.setdefault(t["kind"], {}).setdefault(k, set()).add(value_text(v))
    return {kind: [k for k, vals in params.items() if len(vals) > 1] for kind, params in seen.items()}


def _settings(item: WorkItem, axes: dict[str, list[str]]) -> str:
    """What one Tune item runs: a trial's distinguishing values; a pack's shared values and what
    differs among its members; a shard trial's place."""
    if isinstance(item, ShardItem):
        return f"scores shard {item.index + 1} of {item.n} of run {item.run.run_id[:8]}"
    members = item.runs
    p0 = members[0].params
    mine = axes.get(item.kind, [])
    same = [k for k in mine if k in p0 and all(m.params.get(k) == p0[k] for m in members)]
    differ = [k for k in mine if k not in same]
    text = " ".join(f"{k}={value_text(p0[k])}" for k in same)
    if differ:
        text += " · members differ in " + ", ".join(differ)
    return text


def _search_lines(work: Work) -> list[str]:
    cfg = work.cfg
    out = []
    ranges = {a: v for a, v in cfg.grid.items() if not isinstance(v, list)}
    for g in cfg.groups:
        ranges.update({a: v for a, v in g.grid.items() if not isinstance(v, list)})
    space = "; ".join(f"{a} {v.dist} {value_text(list(getattr(v, v.dist)))}" for a, v in ranges.items())
    if cfg.search.type == "random":
        out.append(f"search: random, seed {cfg.search.seed}: {cfg.search.num_samples} samples of {space} "
                   "(drawn now, listed below with the values they drew)")
    elif cfg.search.type == "optuna":
        stored = cfg.search.num_samples - work.optuna_left
        lists = "; ".join(f"{a} choice {value_text(v)}" for a, v in cfg.grid.items() if isinstance(v, list))
        out.append(f"search: optuna (TPE, seed {cfg.search.seed}) on {cfg.search.metric} ({cfg.search.mode}): "
                   f"{work.optuna_left} trials to draw as the sweep goes, {stored} of {cfg.search.num_samples} "
                   f"stored; space: {'; '.join(filter(None, [space, lists]))}")
    if cfg.scheduler is not None:
        s = cfg.scheduler
        out.append(f"scheduler: asha on {s.metric} ({s.mode}), grace {s.grace_period} steps, reduction factor "
                   f"{s.reduction_factor:g}: trials listed here may be pruned early (a pruned run is final)")
    return out


@contextlib.contextmanager
def _current_schema(store_dir: str, echo: Callable[[str], None]) -> Iterator[str]:
    """The store folder to plan against: `store_dir` itself, or for a store an older priorlab
    wrote, a migrated copy of its database in a temporary folder. A plan writes nothing (issue 16),
    yet the sweep it describes would migrate the store first and then read it as migrated."""
    from priorlab import vocab
    from priorlab.analysis.schema import SCHEMA_VERSION, migrate, user_version

    db = Path(store_dir) / vocab.DB_NAME
    version = 0
    if db.is_file():
        with contextlib.closing(sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)) as conn:
            with contextlib.suppress(sqlite3.DatabaseError):  # a damaged file: decide() says so
                version = user_version(conn)
    if not 0 < version < SCHEMA_VERSION:
        yield store_dir
        return
    with tempfile.TemporaryDirectory(prefix="priorlab-plan-") as tmp:
        with contextlib.closing(sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)) as src, \
                contextlib.closing(sqlite3.connect(Path(tmp) / vocab.DB_NAME, isolation_level=None)) as copy:
            src.backup(copy)
            migrate(copy, where=str(db))
        echo(f"store {store_dir}: schema v{version}, older than this priorlab's v{SCHEMA_VERSION}; planned on a "
             "migrated copy (the sweep migrates the store once before it runs; the plan leaves it as it is)")
        yield tmp


def plan(
    config_path: str,
    store_dir: str = "results",
    address: str | None = None,
    num_cpus: int | None = None,
    max_concurrent: int | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
    extend: bool = False,
    only: list[str] | None = None,
    artifacts: str | None = None,
) -> int:
    """Print what `priorlab sweep` would run with the same arguments; 0, or 2 for a config error."""
    from priorlab.analysis.store import StoreError

    with _current_schema(store_dir, echo) as read_dir:
        try:
            work = decide(config_path, read_dir, force=force, extend=extend, only=only, artifacts=artifacts)
        except (ConfigError, OSError, ValueError) as e:
            echo(f"config error: {e}")
            return 2
        except StoreError as e:
            echo(f"store error: {e}")
            return 2
        shards = work.shards(read_dir, artifacts)
    cfg = work.cfg
    items = shards + work.items()
    packs = [i for i in items if isinstance(i, PackItem)]
    k = cfg.pack or 1
    scope = f", only {len(work.todo)} named by --only" if work.only else ""
    head = (f"plan for sweep {cfg.name}: {len(work.trials)} runs, {len(work.done)} already final (done or pruned) "
            f"in {store_dir}{scope}, {len(work.todo)} to run as {len(items)} Tune trials")
    if k > 1:
        head += f" ({len(packs)} packs of up to {k} runs)"
    elif any(t["kind"] in packing.PACKABLE for t in work.todo):
        head += " (no packing; add `pack: K` to pack DIP runs)"
    if shards:
        head += f", {len(shards)} of them StyleGAN scoring shards that run first"
    echo(head)
    for line in _search_lines(work):
        echo("  " + line)
    if work.files:
        from priorlab.cluster import inputs as input_files

        total = sum(f.size for f in work.files)
        echo(f"input files: {len(work.files)}, {input_files.describe_size(total)} in all, checked here and shipped to "
             "the trials through Ray's object store (relative paths are read from the config file's folder)")
        for line in input_files.describe(work.files):
            echo(line)
    if work.nothing_to_run:
        echo("nothing to run: every run is final in the store (the sweep would not start Ray); "
             "--force reruns all, --only RUN_ID reruns one")
        return 0
    axes = _axes(work.trials)
    names = [i.name for i in items]
    width = max([len(n) for n in names] + [5])
    kind_w = max([len(i.kind) for i in items] + [4])
    asks = [packing._fmt_resources(i.resources) for i in items]
    ask_w = max([len(a) for a in asks] + [8])
    echo(f"  {'trial':<{width}}  {'kind':<{kind_w}}  {'runs':>4}  {'asks for':<{ask_w}}  settings")
    for item, name, ask in zip(items, names, asks):
        n = 0 if isinstance(item, ShardItem) else len(item.runs)
        echo(f"  {name:<{width}}  {item.kind:<{kind_w}}  {n:>4}  {ask:<{ask_w}}  {_settings(item, axes)}".rstrip())
    if work.optuna_left:
        echo(f"  (+ {work.optuna_left} Optuna trials, their values drawn as the sweep goes)")

    where, nodes = packing.capacity(address, num_cpus)
    echo(f"cluster: {where}")
    limit = max_concurrent or cfg.max_concurrent
    requests: dict[tuple, int] = {}
    for item in items:
        key = tuple(sorted(item.resources.items()))
        requests[key] = requests.get(key, 0) + 1
    if work.optuna_left:
        key = tuple(sorted(ray_resources(cfg.resources).items()))
        requests[key] = requests.get(key, 0) + work.optuna_left
    for key, count in requests.items():
        request = dict(key)
        fit = packing.at_once(nodes, request)
        n = min(fit, count, limit) if limit else min(fit, count)
        why = f" (max_concurrent {limit})" if limit and limit < min(fit, count) else ""
        if fit == 0:
            echo(f"  trials asking {packing._fmt_resources(request)}: none fit on any node; they would wait forever")
        else:
            echo(f"  trials asking {packing._fmt_resources(request)}: {n} of {count} at once{why} "
                 f"({fit} fit side by side)")
    return 0
