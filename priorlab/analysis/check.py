"""`priorlab check --store S [--repair]`: is every result in a store intact?

What is checked, and what `--repair` does about it:

- the database: SQLite's `PRAGMA integrity_check` and `foreign_key_check`, and its schema
  version (an older one is migrated by `--repair`). A damaged database is reported, never
  "repaired": restore it from a backup.
- artifacts: every file a row references exists and still hashes to its name. A missing or
  corrupted file is reported with the runs that show it (rerun those with `--force`);
  `--repair` cannot bring its bytes back.
- orphans, which `--repair` removes: artifact PNGs no row references (a rerun replaces a run's
  rows but content-addressed files stay), temporary files of interrupted writes, and
  `shards/<run_id>/` folders of finished runs (done or diverged) or of runs the store does not
  know. Files changed in the last `GRACE_S` seconds are left alone: a sweep writing right now
  puts an artifact's file in place before its row.

Reads use a read-only connection; only `--repair` writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from priorlab import vocab
from priorlab.analysis.schema import SCHEMA_VERSION, StoreError
from priorlab.analysis.store import Store, is_db_url, require_artifacts
from priorlab.analysis.store.postgres import safe_url

GRACE_S = 600.0
SHOW = 10  # at most this many paths per kind of problem in the report


@dataclass
class CheckReport:
    root: Path | str
    database: list[str] = field(default_factory=list)  # problems with the database itself
    notes: list[str] = field(default_factory=list)  # what was fine, what was migrated
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # path -> run ids
    missing: dict[str, list[str]] = field(default_factory=dict)  # sha256 -> run ids
    orphans: list[Path] = field(default_factory=list)  # unreferenced PNGs and temp files
    stale_shards: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    n_files: int = 0

    @property
    def clean(self) -> bool:
        """Nothing wrong is left (orphans that --repair removed do not count)."""
        left = [p for p in self.orphans + self.stale_shards if p not in self.removed]
        return not (self.database or self.corrupt or self.missing or left)

    def lines(self) -> list[str]:
        out = [f"store {self.root}"]
        out += [f"  {n}" for n in self.notes]
        out += [f"  database: {d}" for d in self.database]
        out += _listed("corrupted artifact", [f"{p} (runs {', '.join(r)})" for p, r in self.corrupt.items()])
        out += _listed("missing artifact", [f"{s} (runs {', '.join(r)})" for s, r in self.missing.items()])
        if self.corrupt or self.missing:
            out.append("  (rerun the affected runs with `priorlab sweep CONFIG --force`)")
        removed = set(self.removed)
        out += _listed("orphan file", [str(p) for p in self.orphans if p not in removed])
        out += _listed("shard folder of a finished run", [str(p) for p in self.stale_shards if p not in removed])
        if any(p not in removed for p in self.orphans + self.stale_shards):
            out.append("  (`priorlab check --repair` removes orphans)")
        out += _listed("removed", [str(p) for p in self.removed])
        out.append("clean" if self.clean else "problems found")
        return out


def _listed(what: str, items: list[str]) -> list[str]:
    out = [f"  {what}: {item}" for item in items[:SHOW]]
    if len(items) > SHOW:
        out.append(f"  … and {len(items) - SHOW} more {what}s")
    return out



def check_store(root: str | Path, repair: bool = False, now: float | None = None,
                artifacts: str | Path | None = None) -> CheckReport:
    """Inspect the store at `root` (a folder or `postgresql://…`, its files at `artifacts` when
    they live elsewhere), and with `repair`, migrate it and remove orphans.

    A folder with no database is a `StoreError`; a database that cannot be opened is reported in
    `database` (then nothing else is checked: without its rows no file can be called an orphan).
    """
    root = str(root) if is_db_url(str(root)) else Path(root)
    report = CheckReport(root=safe_url(root) if isinstance(root, str) else root)
    now = time.time() if now is None else now
    require_artifacts(root, artifacts)  # bad input, not a finding: one line, exit 2
    if isinstance(root, Path) and not (root / vocab.DB_NAME).is_file():
        raise StoreError(f"no priorlab store at {root} (expected {root / vocab.DB_NAME})")
    try:
        store = _open(root, repair, report, artifacts)
        report.database += store.db.integrity_problems()
        with store._reader() as c:
            refs: dict[str, list[str]] = {}
            for sha, run_id in c.execute("SELECT sha256, run_id FROM artifacts ORDER BY sha256, run_id"):
                refs.setdefault(sha, []).append(run_id)
            status = dict(c.execute("SELECT run_id, status FROM runs").fetchall())
    except StoreError as e:
        report.database.append(str(e))
        return report

    _check_artifacts(store, refs, report, now)
    _check_shards(store, status, report, now)
    if repair:
        for path in report.orphans + report.stale_shards:
            store.files.remove(path)
            report.removed.append(path)
    return report


def _open(root: Path | str, repair: bool, report: CheckReport, artifacts) -> Store:
    store = Store(root, readonly=True, any_version=True, artifacts=artifacts)
    version = store.schema_version
    if version < SCHEMA_VERSION:
        if repair:
            Store(root, artifacts=artifacts).close()  # migrates, in one transaction
            report.notes.append(f"migrated the database from schema v{version} to v{SCHEMA_VERSION}")
            store = Store(root, readonly=True, artifacts=artifacts)
        else:
            report.database.append(f"schema v{version} is older than this priorlab's v{SCHEMA_VERSION}; "
                                   "`priorlab check --repair` migrates it")
    return store


def _check_artifacts(store: Store, refs: dict[str, list[str]], report: CheckReport, now: float) -> None:
    for sha, run_ids in refs.items():
        ok = store.files.artifact_ok(sha)
        if ok is None:
            report.missing[sha] = run_ids
        elif not ok:
            report.corrupt[str(store.files.artifact_path(sha))] = run_ids
    for path, mtime in store.files.artifact_files():
        report.n_files += 1
        recent = now - mtime < GRACE_S
        name = PurePosixPath(str(path))  # a local Path or an object's URL
        if name.suffix == ".png" and name.stem in refs:
            continue
        if not recent:  # unreferenced PNGs, interrupted writes' temp files, anything else
            report.orphans.append(path)
    if report.n_files or store.files.has_artifact_dir():
        report.notes.append(f"{report.n_files} artifact files, {len(refs)} referenced by the database")


def _check_shards(store: Store, status: dict[str, str], report: CheckReport, now: float) -> None:
    for run_id, folder, mtime in store.files.shard_runs():
        if now - mtime < GRACE_S:
            continue
        if status.get(run_id) in vocab.COMPLETED or run_id not in status:
            report.stale_shards.append(folder)
