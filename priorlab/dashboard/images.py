"""Image helpers for the dashboard: PIL and numpy only (no torch, no Streamlit).

Artifacts arrive as PNG bytes (or None when a file is missing); everything here turns them
into `PIL.Image` objects in RGB and never raises on a missing or unreadable image — it draws
a labelled placeholder instead. An artifact whose bytes do not hash to the sha256 the store
recorded for it is drawn as "corrupted" rather than decoded (`artifact_image`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PLACEHOLDER_BG = (236, 236, 240)
PLACEHOLDER_FG = (120, 120, 130)


def font(size: int = 14) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def decode(png: bytes | None) -> Image.Image | None:
    """RGB image from PNG bytes; None when there are no bytes or they are not an image."""
    if not png:
        return None
    try:
        img = Image.open(io.BytesIO(png))
        img.load()
    except Exception:
        return None
    return img.convert("RGB")


def verified(png: bytes | None, sha256: str | None) -> bool:
    """True when `png` hashes to `sha256` (the store names each artifact by its content)."""
    return png is not None and isinstance(sha256, str) and hashlib.sha256(png).hexdigest() == sha256.lower()


def artifact_image(png: bytes | None, sha256: str | None, size: tuple[int, int] = (64, 64)) -> Image.Image | None:
    """The stored image, None when its file is missing, or a "corrupted" placeholder of `size`
    when the bytes do not match their hash or do not decode."""
    if png is None:
        return None
    if not verified(png, sha256):
        return placeholder(*size, "corrupted")
    img = decode(png)
    return img if img is not None else placeholder(*size, "corrupted")


def placeholder(width: int, height: int, text: str = "missing") -> Image.Image:
    """A grey tile with `text` centred: what a missing artifact looks like."""
    width, height = max(int(width), 8), max(int(height), 8)
    img = Image.new("RGB", (width, height), PLACEHOLDER_BG)
    draw = ImageDraw.Draw(img)
    f = font(max(9, min(16, width // 8)))
    box = draw.textbbox((0, 0), text, font=f)
    tw, th = box[2] - box[0], box[3] - box[1]
    draw.text(((width - tw) / 2, (height - th) / 2 - box[1]), text, fill=PLACEHOLDER_FG, font=f)
    draw.rectangle([0, 0, width - 1, height - 1], outline=(200, 200, 208))
    return img


def enlarge(img: Image.Image, min_side: int) -> Image.Image:
    """Scale up by an integer factor with nearest-neighbour (crisp pixels) until the shorter
    side reaches `min_side`; larger images are returned unchanged."""
    side = min(img.size)
    if side <= 0 or side >= min_side:
        return img
    k = -(-min_side // side)
    return img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)


def thumbnail(img: Image.Image, max_side: int) -> Image.Image:
    """A copy no larger than `max_side` on either side (small images are enlarged crisply)."""
    if max(img.size) <= max_side:
        return enlarge(img, max_side)
    out = img.copy()
    out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def _same_size(a: Image.Image, b: Image.Image) -> tuple[Image.Image, Image.Image]:
    if a.size != b.size:
        b = b.resize(a.size, Image.Resampling.BICUBIC)
    return a, b


def difference(output: Image.Image, clean: Image.Image, gain: float = 1.0) -> Image.Image:
    """|output − clean| per channel, multiplied by `gain` and clipped: black means identical."""
    output, clean = _same_size(output, clean)
    d = np.abs(np.asarray(output, np.float32) - np.asarray(clean, np.float32)) * float(gain)
    return Image.fromarray(np.clip(d, 0, 255).round().astype(np.uint8), "RGB")


def before_after(before: Image.Image, after: Image.Image, split: float) -> Image.Image:
    """`before` left of the split (a fraction of the width), `after` right of it, with a thin
    white divider: a static stand-in for an interactive before/after slider."""
    before, after = _same_size(before, after)
    w, h = before.size
    x = int(round(min(max(split, 0.0), 1.0) * w))
    out = after.copy()
    if x > 0:
        out.paste(before.crop((0, 0, x, h)), (0, 0))
    if 0 < x < w:
        draw = ImageDraw.Draw(out)
        draw.line([(x, 0), (x, h - 1)], fill=(255, 255, 255), width=max(1, w // 128))
    return out


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def grid_image(rows: Sequence[tuple[str, Sequence[Image.Image | None]]], col_labels: Sequence[str],
               cell: int = 128, pad: int = 4, title: str | None = None) -> Image.Image:
    """One figure: a row label on the left of each row of images, a header above each column.

    `rows`: `(label, images)` with `len(images) == len(col_labels)`; a None image becomes a
    placeholder. Every image is scaled to `cell` pixels on its longer side (nearest-neighbour
    when enlarging, so small training images stay crisp).
    """
    f = font(max(11, cell // 9))
    tf = font(max(12, cell // 8))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_w(s: str, fnt=f) -> int:
        b = probe.textbbox((0, 0), s, font=fnt)
        return b[2] - b[0]

    line_h = probe.textbbox((0, 0), "Ag", font=f)[3] + 2
    label_w = max([text_w(part) for label, _ in rows for part in label.split("\n")] + [0]) + 3 * pad
    head_h = line_h + 2 * pad
    title_h = (probe.textbbox((0, 0), "Ag", font=tf)[3] + 3 * pad) if title else 0
    n_cols = max(len(col_labels), 1)
    # As wide as the title too: a three-column grid cut "… lr=0.01, snapshots=[20, 40]" at "snapshot".
    width = max(label_w + n_cols * (cell + pad) + pad, (text_w(title, tf) + 2 * pad) if title else 0)
    height = title_h + head_h + len(rows) * (cell + pad) + pad
    fig = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    if title:
        draw.text((pad, pad), title, fill=(20, 20, 20), font=tf)
    for j, lab in enumerate(col_labels):
        x = label_w + j * (cell + pad) + (cell - text_w(lab)) // 2
        draw.text((x, title_h + pad), lab, fill=(40, 40, 40), font=f)
    for i, (label, images) in enumerate(rows):
        y = title_h + head_h + i * (cell + pad)
        parts = label.split("\n")
        y_text = y + (cell - len(parts) * line_h) // 2
        for k, part in enumerate(parts):
            draw.text((pad, y_text + k * line_h), part, fill=(20, 20, 20), font=f)
        for j in range(n_cols):
            img = images[j] if j < len(images) else None
            tile = _fit(img, cell) if img is not None else placeholder(cell, cell, "missing")
            x = label_w + j * (cell + pad)
            fig.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
    return fig


def _fit(img: Image.Image, cell: int) -> Image.Image:
    w, h = img.size
    scale = cell / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return img.resize(size, method)
