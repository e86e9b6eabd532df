"""`priorlab check --store S [--repair]`: is every result in a store intact?

What is checked, and what `--repair` does about it:

- the database: SQLite's `PRAGMA integrity_check` and `foreign_key_check`, and its schema
  version (an older one is migrated by `--repair`). A damaged database is reported, never
  "repaired": restore it from a backup.
- artifacts: every file a row references exists and still hashes to its name. A missing or
  corrupted file is reported with the runs that show it, and the command that reruns just
  those runs (`priorlab sweep CONFIG --only RUN_ID,...`, per sweep);
  `--repair` cannot bring its bytes back.
- orphans, which `--repair` removes: artifact PNGs no row references (a rerun replaces a run's
  rows but content-addressed files stay), temporary files of interrupted writes, and
  `shards/<run_id>/` folders of finished runs (done or diverged) or of runs the store does not
  know. Files changed in the last `GRACE_S` seconds are left alone: a sweep writing right now
  puts an artifact's file in place before its row.

`--repair` never removes anything when the database fails its integrity check (its rows decide
what is an orphan), never follows or removes a symbolic link (a linked `artifacts/`, `shards/`
or file inside them is listed as skipped: it may lead out of the store), and reports as removed
only what is gone.

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
    short: dict[str, str] = field(default_factory=dict)  # run id -> what its rows lack
    orphans: list[Path] = field(default_factory=list)  # unreferenced PNGs and temp files
    stale_shards: list[Path] = field(default_factory=list)
    sweeps_of: dict[str, list[str]] = field(default_factory=dict)  # run id -> the sweeps it belongs to
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # orphans --repair found it must not remove
    skipped: list[Path] = field(default_factory=list)  # links and other non-regular entries
    n_files: int = 0

    @property
    def clean(self) -> bool:
        """Nothing wrong is left (orphans that --repair removed do not count)."""
        left = [p for p in self.orphans + self.stale_shards if p not in self.removed]
        return not (self.database or self.corrupt or self.missing or self.short or left)

    def lines(self) -> list[str]:
        out = [f"store {self.root}"]
        out += [f"  {n}" for n in self.notes]
        out += [f"  database: {d}" for d in self.database]
        out += _listed("corrupted artifact", [f"{p} (runs {', '.join(r)})" for p, r in self.corrupt.items()])
        out += _listed("missing artifact", [f"{s} (runs {', '.join(r)})" for s, r in self.missing.items()])
        out += _listed("finished run with missing rows", [f"{r}: {w}" for r, w in self.short.items()])
        out += self.rerun_lines()
        removed = set(self.removed)
        out += _listed("orphan file", [str(p) for p in self.orphans if p not in removed])
        out += _listed("shard folder of a finished run", [str(p) for p in self.stale_shards if p not in removed])
        if any(p not in removed for p in self.orphans + self.stale_shards):
            out.append("  (`priorlab check --repair` removes orphans)")
        out += _listed("removed", [str(p) for p in self.removed])
        out += _listed("not removed (a link, or it leads out of the store)", [str(p) for p in self.kept])
        out += _listed("skipped (a symbolic link or special file: check never follows links out of the "
                       "store, nor removes them)", [_link_text(p) for p in self.skipped])
        out.append("clean" if self.clean else "problems found")
        return out


    def rerun_lines(self) -> list[str]:
        """Per sweep, the command that reruns only the runs whose rows or images were lost (a
        `--force` would rerun the whole sweep to bring back two images)."""
        affected = sorted({r for runs in [*self.corrupt.values(), *self.missing.values()] for r in runs}
                          | set(self.short))
        if not affected:
            return []
        by_sweep: dict[str, list[str]] = {}
        for r in affected:
            by_sweep.setdefault((self.sweeps_of.get(r) or ["?"])[0], []).append(r)
        out = []
        for sweep, runs in sorted(by_sweep.items()):
            where = f"the config of sweep {sweep!r}" if sweep != "?" else "the config that made them"
            out.append(f"  rerun just these {len(runs)} run{'s' if len(runs) != 1 else ''}: "
                       f"priorlab sweep CONFIG --only {','.join(runs)}   (CONFIG: {where})")
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
            # SQLite's NOT INDEXED: the table itself, not an index a damaged file may have lost rows from.
            table = "artifacts NOT INDEXED" if getattr(c, "dialect", "sqlite") == "sqlite" else "artifacts"
            for sha, run_id in sorted(c.execute(f"SELECT sha256, run_id FROM {table}")):
                refs.setdefault(sha, []).append(run_id)
            status = dict(c.execute("SELECT run_id, status FROM runs").fetchall())
            for run_id, sweep in c.execute("SELECT run_id, sweep FROM sweep_runs ORDER BY sweep"):
                report.sweeps_of.setdefault(run_id, []).append(sweep)
            if store.schema_version >= 3:  # the counts a run's trial sent are kept from v3 on
                _check_rows(c, report)
    except StoreError as e:
        report.database.append(str(e))
        return report

    _check_artifacts(store, refs, report, now)
    _check_shards(store, status, report, now)
    report.skipped = store.files.links() if hasattr(store.files, "links") else []  # object stores have none
    if repair and report.database and (report.orphans or report.stale_shards):
        # Which files the runs reference comes from this database: once it fails its own
        # checks, a file it does not list may still be a result's.
        report.notes.append("repair removed nothing: the database failed its integrity check, so the "
                            "files it does not reference may still belong to results; restore it from a "
                            "backup, then repair")
    elif repair:
        for path in report.orphans + report.stale_shards:
            gone = store.files.remove(path)
            (report.kept if gone is False else report.removed).append(path)  # False: a link, left alone
    return report


def _link_text(path: Path) -> str:
    try:
        return f"{path} -> {path.readlink()}" if path.is_symlink() else f"{path} (not a regular file)"
    except OSError:
        return str(path)


def _check_rows(c, report: CheckReport) -> None:
    """Finished runs that hold fewer metric rows or artifacts than their trial sent."""
    rows = c.execute(f"""
        SELECT run_id, sent_metrics, sent_artifacts,
               (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.run_id),
               (SELECT COUNT(*) FROM artifacts a WHERE a.run_id = r.run_id)
        FROM runs r WHERE status IN ({', '.join(f"'{s}'" for s in vocab.COMPLETED)})
          AND (sent_metrics IS NOT NULL OR sent_artifacts IS NOT NULL)""")
    for run_id, sent_m, sent_a, n_m, n_a in rows:
        if n_m < (sent_m or 0) or n_a < (sent_a or 0):
            report.short[run_id] = f"{n_m} of {sent_m or 0} metric rows, {n_a} of {sent_a or 0} artifacts"


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
