"""One-line error messages: `ConfigError` and the formatting every config check shares.

A bad input is reported as one line per bad field: where it was written, the field, the value
(quoted short) and what is allowed; an unknown key gets the nearest valid one.
"""

from __future__ import annotations

import difflib
import reprlib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A sweep config that cannot run; the message says where and why."""


MAX_SHOWN = 80  # characters of a value quoted in an error message


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A value's repr for a message, at most `limit` characters (a huge input stays one line)."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = limit, limit, 8, 8, 3
    text = r.repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loc(loc: tuple) -> str:
    """("groups", 1, "fixed") -> "groups[1].fixed"."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _model_at(model: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (walks nested models and lists of them)."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _inner_model(field.annotation) if field else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def unknown_key(block: str, key: str, allowed: typing.Iterable[str], what: str = "") -> str:
    """`fixed.iteration: unknown key (for kind dip); did you mean 'iterations'? allowed: ...`."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    place = f"{block}.{clip(str(key))}" if block else clip(str(key))
    return f"{place}: unknown key{what}; {hint}allowed: {', '.join(allowed)}"


def format_validation(err: ValidationError, where: str = "", as_flags: bool = False,
                      model: type[BaseModel] | None = None, block: str = "") -> str:
    """One line per bad field: where, the field (or its command-line flag), the value, what is allowed.

    `model` (the validated model) lets an unknown key be answered with the nearest valid one;
    `block` names the config block the fields came from (`fixed`, `groups[1].grid`, ...).
    """
    return format_errors(err.errors(), where, as_flags=as_flags, model=model, block=block)


def format_errors(errors: list[dict], where: str = "", as_flags: bool = False,
                  model: type[BaseModel] | None = None, block: str = "") -> str:
    lines = []
    for e in errors:
        loc = tuple(e["loc"])
        field = _loc(loc) or "(parameters)"
        if as_flags:
            field = "--" + field.replace("_", "-")
        elif block:
            field = f"{block}.{field}"
        holder = _model_at(model, loc[:-1]) if loc else None
        if e["type"] == "extra_forbidden" and holder is not None and not as_flags:
            parent = field.rsplit(".", 1)[0] if "." in field else ""
            lines.append(where + unknown_key(parent, loc[-1], holder.model_fields))
            continue
        value = e.get("input")
        value_text = "" if isinstance(value, dict) else f" = {shown(value)}"
        msg = str(e["msg"]).removeprefix("Value error, ")  # pydantic's wrapper says nothing to a user
        msg = msg if len(msg) <= 4 * MAX_SHOWN else msg[: 4 * MAX_SHOWN] + "..."
        lines.append(f"{where}{field}{value_text}: {msg}")
    return "\n".join(lines)


def flag_line(err: ValidationError) -> str:
    """The command line's answer to bad flags, on ONE line: `--depth 5: depth 5 does not fit size 32
    ...; allowed depths ...`, several bad flags joined by `; ` (pydantic's `Value error, ` dropped)."""
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        flag = "--" + _loc(loc).replace("_", "-") if loc else "(parameters)"
        value = e.get("input")
        value_text = "" if isinstance(value, dict) or not loc else f" {clip(str(value))}"
        msg = " ".join(str(e["msg"]).split()).removeprefix("Value error, ")
        msg = msg if len(msg) <= 4 * MAX_SHOWN else msg[: 4 * MAX_SHOWN] + "..."
        parts.append(f"{flag}{value_text}: {msg}")
    return "; ".join(parts)
