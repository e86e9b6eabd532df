"""The README's promises hold: every `priorlab ...` line it shows parses, the cheap ones run.

A documented flag can never go missing again: each `priorlab` line in a code block is parsed
by the real parser (unknown flags fail), every ``--flag`` quoted in the prose is accepted by
some subcommand, and the single-run lines (dip, baseline, stylegan, runs) run at tiny sizes
in a temporary folder. Lines that need a cluster, a browser or long work are parsed only.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from priorlab.analysis.store import Store
from priorlab.cluster.cli import build_parser, main

README = Path(__file__).resolve().parents[2] / "README.md"

# Placeholders in the README and what stands in for them in the test.
PLACEHOLDERS = {"FILE": "runs-export.csv", "N": "2", "ADDR": "auto"}
# Tiny sizes for the lines that run: a few seconds each on one core.
TINY = {"--size": "32", "--iterations": "6", "--width": "8", "--depth": "2"}


def code_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the README."""
    blocks, block, lang = [], None, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if block is None:
                block, lang = [], line[3:].strip()
            else:
                blocks.append((lang, "\n".join(block)))
                block = None
        elif block is not None:
            block.append(line)
    return blocks


def readme_commands() -> list[str]:
    """Every `priorlab ...` command in the README's code blocks, continuation lines joined."""
    commands = []
    for lang, text in code_blocks():
        if lang not in ("", "bash", "sh", "console"):
            continue
        text = text.replace("\\\n", " ")
        for line in text.splitlines():
            line = re.sub(r"\s#\s.*$", "", line)  # a trailing comment
            m = re.search(r"\bpriorlab (?:dip|baseline|sweep|runs|dashboard|stylegan|check)\b[^'\"]*", line)
            if m:
                commands.append(m.group(0).strip())
    return commands


def to_argv(command: str) -> list[str]:
    """`priorlab runs [--format table|csv] [--out FILE]` -> argv with every option in, the first
    alternative of `a|b`, placeholders filled and `...` (elided flags) dropped."""
    command = command.replace("[", " ").replace("]", " ").replace(" ... ", " ")
    argv = []
    for tok in shlex.split(command)[1:]:
        tok = tok.split("|")[0] if "|" in tok and not tok.startswith("--") else tok
        argv.append(PLACEHOLDERS.get(tok, tok))
    return argv


def prose_flags() -> set[str]:
    """Every ``--flag`` the README quotes in running text."""
    return set(re.findall(r"`(--[a-z][a-z0-9-]*)", README.read_text()))


def test_the_readme_shows_commands_of_every_subcommand():
    subcommands = {to_argv(c)[0] for c in readme_commands()}
    assert {"dip", "baseline", "sweep", "runs", "dashboard", "stylegan"} <= subcommands


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_parses(command, capsys):
    argv = to_argv(command)
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:  # --help exits 0; an unknown flag or a bad choice exits 2
        assert e.code == 0, f"README line `{command}` does not parse: {capsys.readouterr().err.strip()}"


def test_every_flag_the_readme_quotes_is_accepted():
    parser = build_parser()
    known: set[str] = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        known |= set(p._option_string_actions)
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):  # subparsers
                stack += list(action.choices.values())
    missing = sorted(prose_flags() - known)
    assert not missing, f"README quotes flags no subcommand accepts: {missing}"


def tiny(argv: list[str]) -> list[str]:
    """The same command at a tiny size (every TINY flag given once)."""
    out, skip = [], False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok in TINY:
            skip = True
            continue
        out.append(tok)
    if out[0] == "dip":
        return out + [x for kv in TINY.items() for x in kv]
    return out + ["--size", TINY["--size"]]


def write_user_images(folder: Path) -> None:
    """The user's own files the "Your own images" lines name: a noisy photo with no clean copy,
    a benchmark pair, an image and a mask drawn on it (small, and not square: native sizes)."""
    import numpy as np
    from skimage import data, io, transform

    rng = np.random.default_rng(0)
    clean = transform.resize(data.astronaut(), (40, 56), anti_aliasing=True)  # (H, W, 3) in [0, 1]
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    to8 = lambda a: (a * 255).round().astype(np.uint8)  # noqa: E731
    for name, img in (("photo.png", noisy), ("kodim01_noisy.png", noisy), ("kodim01.png", clean),
                      ("wall.png", clean)):
        io.imsave(folder / name, to8(img), check_contrast=False)
    mask = np.full((40, 56), 255, np.uint8)
    mask[10:20, 15:35] = 0  # the hole to fill
    io.imsave(folder / "scribble.png", mask, check_contrast=False)


def test_the_single_run_lines_run_at_tiny_size(tmp_path, monkeypatch, capsys, request):
    """dip, baseline, runs and stylegan lines as written (files in a temporary folder)."""
    monkeypatch.chdir(tmp_path)
    # A Python block that starts `# name.py` is a file the commands below it use (a plug-in).
    for lang, text in code_blocks():
        m = re.match(r"# (\w+\.py)\b", text)
        if lang == "python" and m:
            (tmp_path / m.group(1)).write_text(text)
            # Imported by the runs below: forget it afterwards, or a later test's own `mynets`
            # (tests/cluster/test_plugins.py) would find this one in sys.modules.
            request.addfinalizer(lambda name=m.group(1)[:-3]: sys.modules.pop(name, None))
    monkeypatch.syspath_prepend(str(tmp_path))
    write_user_images(tmp_path)
    ran = []
    for command in readme_commands():
        argv = to_argv(command)
        if argv[0] in ("dip", "baseline") and "--help" not in argv:
            if "--out" not in argv and "--store" not in argv:
                argv += ["--out", "elided"]
            assert main(tiny(argv)) == 0, command
            ran.append(argv[0])
        elif argv[0] == "stylegan":
            # The README's NVIDIA pickle stands for any checkpoint: convert a seeded random
            # generator, then generate from the file the convert line wrote.
            stand_in = "ffhq.pt" if argv[1] == "generate" and Path("ffhq.pt").exists() else "random:16"
            argv = [stand_in if a == "ffhq.pkl" else a for a in argv]
            assert main(argv) == 0, command
            ran.append(" ".join(argv[:2]))
    for command in readme_commands():  # after the runs above, the store has something to list
        argv = to_argv(command)
        if argv[0] == "runs":
            # The README's sweep name stands for any sweep: name one these lines stored (a name
            # the store lacks is an error that lists the names it has).
            stored = Store(tmp_path / "results", readonly=True).sweeps()["name"].tolist()
            argv = [stored[0] if prev == "--sweep" else a for prev, a in zip([None, *argv], argv)]
            assert main(argv) == 0, command
            ran.append("runs")
    capsys.readouterr()
    assert {"dip", "baseline", "stylegan convert", "stylegan generate", "runs"} <= set(ran)
    assert (tmp_path / "runs" / "skip-denoise" / "summary.json").exists()
    assert (tmp_path / "results" / "priorlab.db").exists()


def test_every_dip_example_is_cpu_sized_or_says_how_long_it_takes():
    """Issue 18 (14): a new user copies the first `priorlab dip` line and waits. Every dip line
    that trains a built-in network is CPU-sized (width 32 or less); the first one says how long."""
    for command in readme_commands():
        argv = to_argv(command)
        if argv[0] != "dip" or "--help" in argv or ":" in argv[argv.index("--arch") + 1 if "--arch" in argv else 0]:
            continue
        if "..." in command:  # `priorlab dip ... --store results`: the line above, elided
            continue
        width = int(argv[argv.index("--width") + 1]) if "--width" in argv else 128
        assert width <= 32, f"README line `{command}` trains width {width}: far too long on a CPU"
    text = README.read_text()
    first = text.index("priorlab dip --arch skip --task denoise")
    comment = text[text.rindex("# one DIP trial", 0, first):first]
    assert re.search(r"\d+ min", comment) and "measured" in comment, comment
