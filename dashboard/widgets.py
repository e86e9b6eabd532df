"""Small shared pieces for the pages: URL keys for bound widgets, the `?runs=` list."""

from __future__ import annotations

import streamlit as st

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
