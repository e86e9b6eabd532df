"""Text from the store shown on a terminal: control characters made visible.

Parameters, sweep names, image names and error texts come from config files and plug-ins; an
escape sequence among them (clear screen, a window title, an OSC 52 clipboard write) would be
obeyed by the terminal if printed raw. Every table or message printed to a terminal goes
through `printable`, which shows such characters as Python escapes (`\\x1b`), so the text stays
readable and inert.
"""

from __future__ import annotations

import re

# C0 controls (but tab and newline, which `keep_lines` keeps), DEL, C1 controls, and Unicode
# format characters that reorder or hide text (bidi overrides, zero-width joiners).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(m: re.Match) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: object, keep_lines: bool = False) -> str:
    """`text` with every control character shown as an escape. `keep_lines`: newlines and tabs
    stay (a multi-line message); otherwise they are escaped too (one table cell, one line)."""
    text = str(text)
    if not keep_lines:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    else:
        text = text.replace("\r", "\\r")
    return _CONTROL.sub(_escape, text)
