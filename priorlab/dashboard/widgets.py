"""Small shared pieces for the pages: URL keys for bound widgets, the `?runs=` list, safe Markdown,
numbers as shown."""

from __future__ import annotations

import math
import re

import streamlit as st

EMPTY = "—"  # a table cell with no value, on every page

# Widget keys the pages use for themselves; a run parameter with one of these names gets a
# `p_` prefix as its filter's URL key.
RESERVED = {"runs", "sort", "desc", "ranges", "thumbs", "thumb_page", "sweep", "step", "metric",
            "factor", "embed", "embed_options"}


def filter_key(column: str) -> str:
    """The widget key (and query parameter) of the Runs filter on `column`."""
    if column in RESERVED or column.startswith(("range_", "p_", "fix_", "cmp_", "an_", "grid_")):
        return "p_" + column
    return column


def url_runs() -> list[str]:
    """Run ids from `?runs=id1,id2` (also accepts repeated `runs=` parameters), in order."""
    out: list[str] = []
    for v in st.query_params.get_all("runs"):
        out += [r.strip() for r in v.split(",") if r.strip()]
    return list(dict.fromkeys(out))


# CommonMark lets a backslash escape any ASCII punctuation. Escaping these keeps links,
# emphasis, code, HTML, tables, LaTeX (`$`), autolinks (`https:`, `a@b`) and Streamlit's
# `:color[…]`/`:material/…:`/emoji directives out of a string that came from a user, a URL or
# the store; `-`, `+`, `.` only matter at the start of a line (lists, rules) and are escaped there.
_MD_SPECIAL = set("\\`*_{}[]<>#!|~$:&@")
_JOIN = "\u2060"  # WORD JOINER: zero width, no line break
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")


def md(value) -> str:
    """`value` as Markdown that renders exactly as its text (never a link, emphasis or icon).

    Use for every user-controlled string (run ids from the URL, sweep names, parameter values,
    error lines, labels) that goes into st.markdown/caption/warning/info/subheader, widget or
    expander labels and image captions. Newlines become spaces (a label is one line)."""
    s = "" if value is None else str(value)
    s = " ".join(s.splitlines())
    s = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)
    # Some plugins match the *rendered* text, after escapes are resolved: GFM autolinks
    # (`https://…`, `www.…`, `a@b.org`) and Streamlit's `:material/…:` icons. An invisible
    # word joiner after each colon and at-sign, and inside `www.`, breaks those patterns.
    s = s.replace(":", ":" + _JOIN).replace("@", "@" + _JOIN).replace("www", "ww" + _JOIN + "w")
    m = _LINE_START.match(s)
    if m:
        lead = m.group(2)
        if lead[0].isdigit():  # "1. text" would be a list item: escape the dot or parenthesis
            k = m.end()
            s = s[:k] + "\\" + s[k:]
        else:
            s = s[:m.start(2)] + "\\" + s[m.start(2):]
    return s


def restore(key: str, context: str = "") -> None:
    """Before creating the bound widget `key`: give it back the value it had the last time it
    was on the page *in this context* (the Grid's kind and task). Streamlit forgets an unmounted
    widget's state (and drops it from the URL), so e.g. the Grid's task would fall back to its
    default after a switch to another kind and back; `keep` (after the widget) remembers it.

    A value left over from another context (the rows chosen for denoising, now on inpainting) is
    dropped, from the session and from the URL, so the widget starts from this context's own
    remembered value or its default. A value in the URL wins on the first run of a session (a
    shared link)."""
    ctx, shadow = "_ctx_" + key, f"_keep_{key}@{context}"
    if ctx in st.session_state and st.session_state[ctx] != context:
        st.session_state.pop(key, None)
        if key in st.query_params:
            del st.query_params[key]
    st.session_state[ctx] = context
    if key not in st.session_state and key not in st.query_params and shadow in st.session_state:
        st.session_state[key] = st.session_state[shadow]


def keep(key: str, value, context: str = "") -> None:
    st.session_state[f"_keep_{key}@{context}"] = value


def url_pick(label: str, ids: list[str], key: str, labels: dict[str, str]) -> str:
    """A selectbox over run ids whose URL parameter `key` holds the run id (or a prefix of it),
    not the label a bound selectbox would put there (labels change as runs are added)."""
    wanted = st.query_params.get(key)
    from_url = next((r for r in ids if wanted and r.startswith(wanted)), None)
    widget = f"{key}_pick"
    if st.session_state.get(widget) not in ids:
        st.session_state[widget] = from_url or ids[0]
    rid = st.selectbox(label, ids, format_func=lambda r: labels.get(r, r), key=widget)
    if rid != wanted:
        st.query_params[key] = rid
    return rid


def bound_select(label: str, options: list, default, key: str, **kw):
    """A selectbox bound to `?key=`; a stale value (options changed) falls back to `default`."""
    if st.session_state.get(key, object()) not in options:
        st.session_state.pop(key, None)
    index = options.index(default) if default in options else 0
    return st.selectbox(label, options, index=index, key=key, bind="query-params", **kw)


def number(v) -> float:
    """`v` as a finite float, NaN for anything else (None, text, inf): what the pages format."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def fmt_number(v, spec: str = ".2f") -> str:
    """A number as shown on a page: `format(v, spec)`, or a dash when there is none."""
    x = number(v)
    return "—" if math.isnan(x) else format(x, spec)


def sweep_scope(sweep_names: list[str], key: str = "sweep") -> tuple[str, ...]:
    """The sweeps a page aggregates over, bound to `?sweep=`: empty means every sweep. Shown only
    when the store holds more than one sweep (two sweeps' runs seldom share a budget)."""
    if len(sweep_names) < 2:
        return ()
    return tuple(st.multiselect("Sweeps", sweep_names, key=key, bind="query-params", placeholder="all sweeps"))


def scope_text(sweeps: tuple[str, ...], n_all: int) -> str:
    """What a page aggregates, for its caption: `sweeps a, b` or `all 3 sweeps`."""
    if sweeps:
        return ("sweep " if len(sweeps) == 1 else "sweeps ") + ", ".join(md(s) for s in sweeps)
    return f"all {n_all} sweeps" if n_all > 1 else ("the store's one sweep" if n_all else "every run")


def number_columns(frame, fmt: str = "%.4g") -> dict:
    """`column_config` that shows every numeric column of `frame` in `fmt` (printf style): the
    grid formats the cells itself, where a Styler (`dashed`) renders each one in Python first,
    which took ~0.7 s for Analysis' thousands of matched pairs at 10k runs (bench_dashboard)."""
    return {c: st.column_config.NumberColumn(str(c), format=fmt) for c in frame.columns if frame[c].dtype.kind in "fiu"}


def dashed(frame, spec="{:.4g}", columns=None):
    """`frame` for `st.dataframe` with its numbers in `spec` (`columns`: the numeric ones; a dict
    spec gives each column its own); numbers stay numbers (they sort as numbers). A missing cell
    is drawn by the grid, whatever a Styler's `na_rep` says: every table passes
    `placeholder=EMPTY` for that (without it the grid writes "None")."""
    if isinstance(spec, dict):
        columns = list(spec)
    numeric = [c for c in (columns if columns is not None else frame.columns)
               if c in frame.columns and frame[c].dtype.kind in "fiu"]
    return frame.style.format({c: spec[c] for c in numeric} if isinstance(spec, dict) else spec, subset=numeric)
