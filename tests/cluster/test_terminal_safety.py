"""Escape codes stored in a store never reach the terminal raw, and a plan never writes
(issue 16, items 13 and 15)."""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap

from priorlab.analysis import schema
from priorlab.analysis.store import Store
from priorlab.cluster.cli import main
from priorlab.cluster.sweep import EXIT_CONFIG, run_sweep
from priorlab.cluster.terminal import printable

CLEAR, TITLE, CLIPBOARD = "\x1b[2J", "\x1b]0;pwned\x07", "\x1b]52;c;ZWNobyBoaQ==\x07"


def test_runs_table_shows_escape_codes_as_text(tmp_path, capsys):
    store = Store(tmp_path / "s")
    for i, name in enumerate((f"sweep{CLEAR}", f"x{CLIPBOARD}")):
        store.register_runs(name, [{"run_id": f"r{i}", "kind": "dip", "params": {"image": f"img{TITLE}{i}\x9b1m"}}])
    assert main(["runs", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "\\x1b[2J" in out and "\\x1b]52;c;" in out and "\\x9b" in out


def test_sweep_messages_show_escape_codes_as_text(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(textwrap.dedent('''
        name: fine
        kind: dip
        fixed: {"\\e]52;c;ZWNobw==\\aimage": astronaut}
        '''))
    lines: list[str] = []
    assert run_sweep(str(cfg), store_dir=str(tmp_path / "s"), echo=lines.append) == EXIT_CONFIG
    assert lines and all("\x1b" not in line and "\x07" not in line for line in lines), lines
    assert "\\x1b]52" in "\n".join(lines)


def test_printable_keeps_ordinary_text():
    assert printable("psnr 25.1 · σ=0.1 — ok") == "psnr 25.1 · σ=0.1 — ok"
    assert printable("a\nb", keep_lines=True) == "a\nb" and printable("a\nb") == "a\\nb"
    assert printable("\u202eevil") == "\\u202eevil"


def test_plan_never_migrates_or_writes_an_older_store(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root = tmp_path / "old"
    root.mkdir()
    conn = sqlite3.connect(root / "priorlab.db", isolation_level=None)
    schema.migrate(conn, migrations=schema.MIGRATIONS[:1])  # a first-release store
    conn.close()
    before = hashlib.sha256((root / "priorlab.db").read_bytes()).hexdigest()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: p\nkind: dip\nfixed: {image: astronaut, size: 16, width: 4, depth: 1, iterations: 2}\n")
    assert main(["sweep", str(cfg), "--store", str(root), "--plan"]) == 0
    assert hashlib.sha256((root / "priorlab.db").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in root.iterdir()) == ["priorlab.db"]
    conn = sqlite3.connect(root / "priorlab.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
