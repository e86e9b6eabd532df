"""The command line's manners: every flag documented, Unix-like output, one-line errors (exit 2).

Run in-process through `priorlab.cluster.cli.main` (fast); a subprocess only where the process itself
is the subject (a closed pipe, a busy port).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from priorlab.cluster.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
TINY_DIP = ["--size", "32", "--width", "8", "--iterations", "4", "--log-every", "2"]


# ---- flags: every bool field toggles both ways, every flag says what it means ----

def test_no_masked_loss_is_accepted_and_reaches_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["dip", "--task", "inpaint", "--region", "16", *TINY_DIP, "--no-masked-loss", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["params"]["masked_loss"] is False


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "priorlab"):
    """(name, parser) for every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subparsers(sub, f"{prefix} {name}")


def test_every_bool_parameter_has_a_yes_and_a_no_flag():
    from priorlab.tasks.registry import KINDS

    parser = build_parser()
    for command, kind in (("dip", "dip"), ("baseline", "dip-baseline")):
        for name, field in KINDS[kind].params.model_fields.items():
            if field.annotation in (bool, bool | None):
                flag = name.replace("_", "-")
                assert getattr(parser.parse_args([command, f"--{flag}"]), name) is True
                assert getattr(parser.parse_args([command, f"--no-{flag}"]), name) is False


def test_every_flag_of_every_subcommand_says_what_it_means():
    undocumented = []
    for command, sub in _subparsers(build_parser()):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                undocumented.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
        assert sub.format_help()  # a stray % in a description would break --help itself
    assert not undocumented, f"flags without help: {undocumented}"


@pytest.mark.parametrize("flag, words", [
    ("--head", ["report", "sigmoid", "linear", "output layer"]),
    ("--region-place", ["centre", "random", "inpaint"]),
    ("--masked-loss", ["known pixels", "--no-masked-loss"]),
    ("--size", ["16..4096"]),
    ("--snapshots", ["comma", "1..iterations"]),
])
def test_dip_help_shows_meaning_and_allowed_values(flag, words, capsys):
    with pytest.raises(SystemExit):
        main(["dip", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    params = help_text[help_text.index("task parameters:"):]
    line = params[re.search(re.escape(flag) + r"[ ,]", params).start():][:400]
    for word in words:
        assert word in line, f"{flag} help lacks {word!r}: {line}"


def test_literal_choices_show_in_help_for_every_kind_with_flags():
    from priorlab.cluster.cli import field_help
    from priorlab.tasks.registry import KINDS

    for kind in KINDS.values():
        for name, field in kind.params.model_fields.items():
            assert field.description, f"{kind.name}.{name} has no description"
    head = KINDS["dip"].params.model_fields["head"]  # Literal[...] | None
    assert "report | sigmoid | linear" in field_help(head)


# ---- priorlab runs: stdout by default, a terminal-sized table, no traceback into `head` ----

@pytest.fixture()
def small_store(tmp_path) -> Path:
    """Three runs of one sweep, written through the store API (no Ray, no torch work)."""
    from priorlab.analysis.store import Store

    store = Store(tmp_path / "store", fsync=False)
    runs = [{"run_id": f"{i:x}" * 40, "kind": "dip",
             "params": {"arch": "skip", "depth": d, "sigma": 0.1, "image": "astronaut"}}
            for i, d in ((10, 2), (11, 3), (12, 4))]
    store.register_runs("smoke", runs)
    for i, run in enumerate(runs):
        store.start_run(run["run_id"], node="f3a9c0d1e2b4a5968778695a4b3c2d1e0f" * 2)
        if i == 2:
            store.finish_run(run["run_id"], "error", error="Traceback (most recent call last):\n  boom")
        else:
            store.finish_run(run["run_id"], "done", summary={"best_psnr": 25.123456 + i, "best_step": 100})
    return tmp_path / "store"


def test_runs_csv_without_out_goes_to_stdout_and_writes_no_file(small_store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--out", "-"]):
        assert main(["runs", "--store", str(small_store), "--format", "csv", *extra]) == 0
        df = pd.read_csv(io.StringIO(capsys.readouterr().out))
        assert len(df) == 3 and {"run_id", "node", "error", "best_psnr"} <= set(df.columns)
        assert not (tmp_path / "runs.csv").exists() and not (tmp_path / "-").exists()
    assert main(["runs", "--store", str(small_store), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "x.csv")) == 3
    assert main(["runs", "--store", str(small_store), "--format", "parquet", "--out", str(tmp_path / "x.pq")]) == 0
    assert len(pd.read_parquet(tmp_path / "x.pq")) == 3


def test_runs_parquet_refuses_a_terminal_and_names_out(small_store, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["runs", "--store", str(small_store), "--format", "parquet"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and len(err.strip().splitlines()) == 1


def test_runs_parquet_into_a_pipe_is_binary_parquet(small_store):
    proc = subprocess.run([sys.executable, "-m", "priorlab.cluster.cli", "runs", "--store", str(small_store),
                           "--format", "parquet"], capture_output=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(pd.read_parquet(io.BytesIO(proc.stdout))) == 3


def test_runs_table_fits_a_terminal(small_store, capsys):
    assert main(["runs", "--store", str(small_store)]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 4
    header = lines[0].split()
    assert header[:3] == ["run", "status", "finished"] and "depth" in header and "best_psnr" in header
    for col in ("arch", "sigma", "image", "sweep", "kind", "node", "error"):  # the same in every run, or noise
        assert col not in header
    assert "a" * 8 + " " in out and "a" * 9 not in out  # 8-character run ids
    assert "f3a9c0d1" not in out and "Traceback" not in out and "boom" not in out
    assert "26.12" in out and "26.123456" not in out  # metrics rounded for reading
    assert all(len(line) < 120 for line in lines)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d ", lines[1])  # a readable time, not a timestamp repr


def test_runs_into_a_closed_pipe_ends_quietly(small_store):
    """`priorlab runs | head`: the reader is gone before priorlab writes; no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "priorlab.cluster.cli", "runs", "--store", str(small_store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # priorlab takes ~1 s to import, so it writes into a closed pipe
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code in (0, 141), err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


# ---- priorlab dashboard on a busy port ----

def _listening_pair() -> tuple[socket.socket, socket.socket]:
    """Two sockets listening on two neighbouring ports (port, port + 1) of 127.0.0.1."""
    for _ in range(50):
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", a.getsockname()[1] + 1))
        except OSError:
            a.close()
            b.close()
            continue
        a.listen()
        b.listen()
        return a, b
    raise RuntimeError("no two neighbouring free ports")


def test_dashboard_on_a_busy_port_says_so_in_one_line(tmp_path):
    busy, next_busy = _listening_pair()  # a second dashboard often holds port + 1 too
    with busy, next_busy:
        port = busy.getsockname()[1]
        # A subprocess: on success the command becomes Streamlit (exec), which a test must not do.
        proc = subprocess.run([sys.executable, "-m", "priorlab.cluster.cli", "dashboard", "--store", str(tmp_path),
                               "--port", str(port)], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and str(port) in err[0] and "--port" in err[0] and "in use" in err[0]
    suggested = int(err[0].split("--port ")[-1].split()[0])
    assert suggested > port + 1, f"the hint names a port that is busy: {err[0]}"


def test_make_demo_takes_port_and_store():
    proc = subprocess.run(["make", "-n", "-W", "pyproject.toml", "demo", "PORT=8765", "STORE=/tmp/elsewhere"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in proc.stdout.splitlines() if "bin/priorlab " in ln]
    assert lines and all("--store /tmp/elsewhere" in ln for ln in lines)
    assert any("dashboard" in ln and "--port 8765" in ln for ln in lines)


# ---- bad input: one line naming the flag or file, exit 2, nothing written ----

def _text_file(tmp_path: Path) -> str:
    (tmp_path / "notes.txt").write_text("not an image\n")
    return str(tmp_path / "notes.txt")


def _a_file(tmp_path: Path) -> str:
    (tmp_path / "taken").write_text("x")
    return str(tmp_path / "taken")


def _empty_pkl(tmp_path: Path) -> str:
    (tmp_path / "empty.pkl").write_bytes(b"")
    return str(tmp_path / "empty.pkl")


def _garbage_pt(tmp_path: Path) -> str:
    (tmp_path / "garbage.pt").write_bytes(b"this is not a torch file at all\n" * 4)
    return str(tmp_path / "garbage.pt")


def _malformed_priorlab_pt(tmp_path: Path) -> str:
    """priorlab's format marker with a config record that builds no generator."""
    from priorlab.tasks.stylegan.checkpoints import FORMAT

    torch.save({"format": FORMAT, "version": 1, "config": {"no_such_field": 3}, "state_dict": {}},
               tmp_path / "bad.pt")
    return str(tmp_path / "bad.pt")


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
CASES = [
    pytest.param(lambda t: ["dip", "--device", "bogus", *TINY_DIP], "--device", id="dip-device-bogus"),
    pytest.param(lambda t: ["dip", "--device", "cuda:0", *TINY_DIP], "--device", id="dip-cuda-absent",
                 marks=NO_CUDA),
    pytest.param(lambda t: ["dip", "--image", _text_file(t), *TINY_DIP], "notes.txt", id="dip-image-text"),
    pytest.param(lambda t: ["baseline", "--image", _text_file(t), "--size", "32"], "notes.txt",
                 id="baseline-image-text"),
    pytest.param(lambda t: ["dip", *TINY_DIP, "--out", _a_file(t)], "--out", id="dip-out-is-a-file"),
    pytest.param(lambda t: ["baseline", "--size", "32", "--store", _a_file(t)], "--store", id="baseline-store-file"),
    pytest.param(lambda t: ["dip", "--lr", "inf", *TINY_DIP], "--lr", id="dip-lr-inf"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", "random:16", "--seeds", "0",
                            "--truncation", "nan"], "--truncation", id="truncation-nan"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", "random:16", "--seeds", ""], "--seeds",
                 id="seeds-empty"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", "random:16", "--seeds", "0,x"], "--seeds",
                 id="seeds-not-numbers"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", "random:16", "--seeds", "0",
                            "--device", "bogus"], "--device", id="generate-device-bogus"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", "random:16", "--seeds", "0",
                            "--device", "cuda:0"], "cuda", id="generate-cuda-absent", marks=NO_CUDA),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", _empty_pkl(t), "--seeds", "0"], "empty.pkl",
                 id="generate-empty-pkl"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", _garbage_pt(t), "--seeds", "0"], "garbage.pt",
                 id="generate-garbage-pt"),
    pytest.param(lambda t: ["stylegan", "generate", "--checkpoint", _malformed_priorlab_pt(t), "--seeds", "0"],
                 "bad.pt", id="generate-malformed-priorlab-pt"),
    pytest.param(lambda t: ["stylegan", "convert", _empty_pkl(t), str(t / "o.pt")], "empty.pkl",
                 id="convert-empty-pkl"),
    pytest.param(lambda t: ["stylegan", "convert", "random:16", str(Path(_a_file(t)) / "o.pt")], "taken",
                 id="convert-into-a-file"),
]


@pytest.mark.parametrize("make_argv, named", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(make_argv, named, tmp_path, capsys):
    argv = make_argv(tmp_path)
    if argv[:2] == ["stylegan", "generate"]:
        argv = [*argv, "--out", str(tmp_path / "images")]
    elif "--out" not in argv and argv[0] in ("dip", "baseline") and "--store" not in argv:
        argv = [*argv, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err
    assert named in captured.err, captured.err
    assert len(lines) == 1, captured.err  # bad parameters too: one line naming each flag
    assert not (tmp_path / "images").exists() and not (tmp_path / "run").exists()
