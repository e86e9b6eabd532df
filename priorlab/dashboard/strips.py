"""Cutting StyleGAN strips into frames and drawing them back with a caption under every frame.

The StyleGAN jobs store a row of frames as one image, laid out like `torchvision.utils.make_grid`
(`padding=2`, white gaps): frame (r, c) of size W×H sits at x = 2 + c·(W + 2), y = 2 + r·(H + 2).
`cut` reverses that; `annotated_grid` composes frames into one figure with a caption under each
one, a coloured border per frame (e.g. the classifier's label) and a thick marked border on the
frames that matter (where the label flips, alpha = 0). PIL only, and never raises on a missing
or odd-sized image: a missing frame becomes a placeholder.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from priorlab.dashboard.images import _fit, font, placeholder

PAD = 2  # make_grid's padding in the stored strips
MARK = (245, 166, 35)  # the marked frame's border and tag
POSITIVE = (214, 96, 77)
NEGATIVE = (67, 147, 195)


def cut(img: Image.Image | None, cols: int, rows: int = 1, pad: int = PAD) -> list[list[Image.Image]] | None:
    """The `rows` × `cols` frames of a make_grid image, or None when the size does not fit that
    layout (or there is no image)."""
    if img is None or cols < 1 or rows < 1:
        return None
    w, h = img.size
    if (w - pad) % cols or (h - pad) % rows:
        return None
    fw, fh = (w - pad) // cols - pad, (h - pad) // rows - pad
    if fw < 1 or fh < 1:
        return None
    return [[img.crop((pad + c * (fw + pad), pad + r * (fh + pad), pad + c * (fw + pad) + fw, pad + r * (fh + pad) + fh))
             for c in range(cols)] for r in range(rows)]


def cell_size(frame: Image.Image | None, lo: int = 96, hi: int = 160) -> int:
    """Display size of one frame: small frames enlarged by a whole factor to at least `lo`
    (crisp pixels), large ones shrunk to `hi`."""
    if frame is None:
        return lo
    side = max(frame.size)
    if side >= hi:
        return hi
    if side >= lo:
        return side
    return side * -(-lo // side)


def annotated_grid(cells: Sequence[Sequence[Image.Image | None]], *,
                   captions: Sequence[Sequence[str]] | None = None,
                   borders: Sequence[Sequence[tuple | None]] | None = None,
                   marks: Sequence[Sequence[str | None]] | None = None,
                   col_labels: Sequence[str] | None = None,
                   row_labels: Sequence[str] | None = None,
                   cell: int = 112, title: str | None = None) -> Image.Image:
    """One figure: rows of frames, each scaled to `cell` px, a caption (lines split on "\\n")
    under each, an optional 3-px border colour per frame, and a 5-px `MARK` border with a tag
    (e.g. "flip") above the frames whose `marks` entry is a string."""
    n_rows = len(cells)
    n_cols = max((len(r) for r in cells), default=0)
    f = font(max(11, min(14, cell // 8)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = probe.textbbox((0, 0), "Ag", font=f)[3] + 2

    def text_w(s: str) -> int:
        b = probe.textbbox((0, 0), s, font=f)
        return b[2] - b[0]

    def at(table, i, j, default=None):
        if table is None or i >= len(table) or j >= len(table[i]):
            return default
        return table[i][j]

    gap, border = 8, 5
    cap_lines = max([len(str(at(captions, i, j, "")).split("\n")) for i in range(n_rows) for j in range(n_cols)] + [0])
    cap_h = cap_lines * line_h + (4 if cap_lines else 0)
    tag_h = line_h + 2
    head_h = (line_h + 4) if col_labels else 0
    title_h = (line_h + 8) if title else 0
    label_w = (max(text_w(s) for s in row_labels) + 2 * gap) if row_labels else 0
    widest = max([text_w(s) for r in (captions or []) for c in r for s in str(c).split("\n")] + [0])
    col_w = max(cell + 2 * border, widest + 4)
    row_h = tag_h + cell + 2 * border + cap_h
    width = label_w + n_cols * (col_w + gap) + gap
    height = title_h + head_h + n_rows * (row_h + gap) + gap
    fig = Image.new("RGB", (max(width, 16), max(height, 16)), (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    if title:
        draw.text((gap, 4), title, fill=(20, 20, 20), font=f)
    for j, lab in enumerate(col_labels or []):
        x = label_w + gap + j * (col_w + gap) + (col_w - text_w(lab)) // 2
        draw.text((x, title_h + 2), lab, fill=(60, 60, 60), font=f)
    for i in range(n_rows):
        y0 = title_h + head_h + gap + i * (row_h + gap)
        if row_labels and i < len(row_labels):
            draw.text((gap, y0 + tag_h + border + (cell - line_h) // 2), row_labels[i], fill=(20, 20, 20), font=f)
        for j in range(n_cols):
            x0 = label_w + gap + j * (col_w + gap)
            xc = x0 + (col_w - cell - 2 * border) // 2  # left edge of the bordered tile
            yc = y0 + tag_h
            img = at(cells, i, j)
            tile = _fit(img, cell) if img is not None else placeholder(cell, cell, "missing")
            mark = at(marks, i, j)
            color = at(borders, i, j)
            if mark:
                draw.rectangle([xc, yc, xc + cell + 2 * border - 1, yc + cell + 2 * border - 1], fill=MARK)
                tw = text_w(mark)
                draw.text((xc + (cell + 2 * border - tw) // 2, y0), mark, fill=MARK, font=f)
            if color is not None:
                inset = 2 if mark else 0
                draw.rectangle([xc + inset, yc + inset, xc + cell + 2 * border - 1 - inset,
                                yc + cell + 2 * border - 1 - inset], fill=tuple(color))
            fig.paste(tile, (xc + border + (cell - tile.width) // 2, yc + border + (cell - tile.height) // 2))
            for k, part in enumerate(str(at(captions, i, j, "")).split("\n") if captions else []):
                draw.text((x0 + (col_w - text_w(part)) // 2, yc + cell + 2 * border + 2 + k * line_h), part,
                          fill=(30, 30, 30), font=f)
    return fig
