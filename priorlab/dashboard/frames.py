"""StyleGAN frames on a page: cut from a stored strip or grid (cached), picked, sized and shown.

The jobs store a row of frames as one image (`strips.cut` reverses the layout); a figure shows
at most `MAX_COLS` frames per row, the ones that matter (a flip, alpha = 0) always among them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from priorlab.dashboard import data, images, strips

MAX_COLS = 12  # frames per figure row; longer strips show evenly spaced frames (and the marked ones)
MIN_FRAME = 96  # px: a frame shown smaller than this is a thumbnail nobody can read


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def frames_of(root: str, sha: str | None, cols: int, rows: int = 1):
    """The frames of a stored strip or grid (shrunk to at most 160 px), None if it is missing
    or does not have that layout."""
    png = data.artifact_png(root, sha) if sha else None
    if png is not None and not images.verified(png, sha):  # bytes changed since they were stored
        tile = images.placeholder(64, 64, "corrupted")
        return [[tile] * cols for _ in range(rows)]
    cut = strips.cut(images.decode(png), cols, rows)
    if cut is None:
        return None
    for row in cut:
        for k, f in enumerate(row):
            if max(f.size) > 160:
                row[k] = images.thumbnail(f, 160)
    return cut


def artifact_sha(arts: pd.DataFrame, run_id: str, name: str) -> str | None:
    a = arts[(arts["run_id"] == run_id) & (arts["name"] == name)]
    return None if a.empty else str(a.sort_values("step")["sha256"].iloc[-1])


def shown_columns(k: int, keep=()) -> list[int]:
    """All `k` frame indices, or at most MAX_COLS evenly spaced ones plus those in `keep`."""
    if k <= MAX_COLS:
        return list(range(k))
    keep = {int(x) for x in keep if x is not None and 0 <= x < k}
    even = np.linspace(0, k - 1, max(MAX_COLS - len(keep), 2)).round().astype(int)
    return sorted(set(even.tolist()) | keep)


def cell_for(cells: list[list], target: int = 1100) -> int:
    """Frame size in a figure: crisp enlargement of small frames, but small enough that a row
    of frames fits about `target` pixels (so the captions stay readable in the page)."""
    first = next((c for row in cells for c in row if c is not None), None)
    n = max((len(r) for r in cells), default=1)
    return max(56, min(strips.cell_size(first), target // max(n, 1) - 16))


def show(fig, caption: str) -> None:
    st.image(images.enlarge(fig, 96), caption=caption)


def readable(img: Image.Image, frame_side: float, min_frame: int = MIN_FRAME) -> Image.Image:
    """A stored strip or grid enlarged by a whole factor (crisp pixels) so that each of its
    frames (`frame_side` px, the generator's resolution) shows at least `min_frame` px; one of
    unknown frame size as a single image."""
    if not frame_side or np.isnan(frame_side):
        return images.enlarge(img, min_frame)
    factor = -(-min_frame // int(frame_side))
    if factor <= 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
