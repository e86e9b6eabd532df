"""What the CLI says about a user's mistake: `CliError` (printed as one line, exit 2) and the
checks every command shares."""

from __future__ import annotations

from pathlib import Path


class CliError(Exception):
    """A bad command-line argument or input file: `main` prints it as one line and exits 2."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (some libraries append paragraphs of advice).
    An error raised inside a Ray actor (the store's writer) arrives wrapped in Ray's traceback:
    its own message is the line to show (e.g. which store server went away)."""
    e = getattr(e, "cause", None) or e
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def check_out_folder(flag: str, value: str | None) -> None:
    """An output folder may be missing (it is created) but must not be a file."""
    if value and Path(value).exists() and not Path(value).is_dir():
        raise CliError(f"{flag} {value!r} is a file; give a folder (it is created when missing)")
    if value:
        parent = next((p for p in Path(value).absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise CliError(f"{flag} {value!r}: {str(parent)!r} is a file, not a folder")
