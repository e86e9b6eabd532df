"""Images at the edges: loading into `(1, 3, H, W)` float tensors in [0, 1], PNG bytes out."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from priorlab.tasks import inputs

# scikit-image's bundled images that ship inside the wheel (no download needed).
BUNDLED = (
    "astronaut", "brick", "camera", "cat", "chelsea", "coffee", "coins", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "text",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Limits on a user image file (README: "Images"). A run resizes its image to at most a few
# hundred pixels, so anything larger is a mistake or a decompression bomb: a 20000 x 20000 PNG
# of a few hundred kilobytes decodes to 1.2 GB.
MAX_IMAGE_BYTES = 100_000_000
MAX_IMAGE_PIXELS = 50_000_000
# PIL refuses images past twice this outright (DecompressionBombError) wherever it opens one.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def _to_rgb(array: np.ndarray) -> np.ndarray:
    """Any skimage/PIL array -> (H, W, 3) float32 in [0, 1]."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 4:  # RGBA: composite over white, as a viewer would show it
        alpha = a[:, :, 3:4]
        a = a[:, :, :3] * alpha + (1.0 - alpha)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.clip(a[:, :, :3], 0.0, 1.0)


def read_array(name: str) -> np.ndarray:
    """A bundled scikit-image name or a path to an image file -> (H, W, 3) float32."""
    if name in BUNDLED:
        import skimage.data

        return _to_rgb(getattr(skimage.data, name)())
    path = inputs.resolve(name)  # the driver's file, or its copy on this node
    if not path.is_file():
        raise ValueError(
            f"image: {name!r} is neither a bundled scikit-image name ({', '.join(BUNDLED)}) "
            "nor an existing image file"
        )
    with Image.open(path) as im:
        return _pil_to_rgb(im)


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without PIL's bomb check (we make our own, with
    a message that says the size) and without decoding the pixels."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_image_file(name: str, field: str = "image") -> None:
    """Raise ValueError naming the file unless it is an image that decodes within the limits.

    The size on disk and the pixel count (from the header, before decoding) are checked first,
    so a bomb is refused without ever being decoded.
    """
    path = inputs.resolve(name)
    if not path.is_file():
        raise ValueError(f"{field} {name!r}: no such file")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"{field} {name!r}: {size:,} bytes is larger than the limit of {MAX_IMAGE_BYTES:,}")
    try:
        w, h = _header_size(path)
        if w * h <= MAX_IMAGE_PIXELS:
            with Image.open(path) as im:
                im.load()  # the full decode: a corrupt or truncated file fails here
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... for a bad file
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise ValueError(f"{field} {name!r}: not an image that decodes ({reason})") from None
    if w * h > MAX_IMAGE_PIXELS:
        raise ValueError(f"{field} {name!r}: {w} x {h} pixels is more than the limit of "
                         f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels")


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    im = im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB")
    return _to_rgb(np.asarray(im))


def expand_images(spec: str) -> list[str]:
    """A folder expands to its image files (sorted, named as the folder was: a relative folder
    gives relative names); anything else names one image."""
    path = inputs.resolve(spec)
    if spec not in BUNDLED and path.is_dir():
        files = sorted(str(Path(spec) / p.name) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"image: folder {spec!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return files
    return [spec]


PAIRS_NOISY, PAIRS_CLEAN = "noisy", "clean"  # the subfolders of a folder of pairs


def expand_pairs(spec: str) -> list[tuple[str, str | None]]:
    """A folder of pairs -> [(corrupted file, its clean reference or None)], sorted.

    The pairing rule (README: "A folder of pairs"): the folder holds `noisy/` and, optionally,
    `clean/`; `noisy/NAME.ext` pairs with the one `clean/NAME.*` of the same stem (extensions
    may differ). Anything that does not pair is refused in one line: a noisy file without a
    clean partner (when `clean/` exists), a clean file without a noisy one, two files of one stem.
    A value that is not a folder names one corrupted file, with no partner.
    """
    folder = inputs.resolve(spec)  # (names stay as written: relative to a config's folder)
    if not folder.is_dir():
        return [(spec, None)]
    noisy_dir, clean_dir = folder / PAIRS_NOISY, folder / PAIRS_CLEAN
    if not noisy_dir.is_dir():
        raise ValueError(f"corrupted: folder {spec!r} has no {PAIRS_NOISY}/ subfolder (a folder of pairs holds "
                         f"{PAIRS_NOISY}/ and optionally {PAIRS_CLEAN}/, files paired by name)")

    def by_stem(d: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                if f.stem in out:
                    raise ValueError(f"corrupted: {str(out[f.stem])!r} and {str(f)!r} share the name {f.stem!r}: "
                                     "each name may appear once per subfolder")
                out[f.stem] = f
        return out

    noisy = by_stem(noisy_dir)
    if not noisy:
        raise ValueError(f"corrupted: {str(noisy_dir)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    if not clean_dir.is_dir():
        return [(str(Path(spec) / PAIRS_NOISY / f.name), None) for f in noisy.values()]
    clean = by_stem(clean_dir)
    for a, b, what in ((noisy, clean, PAIRS_CLEAN), (clean, noisy, PAIRS_NOISY)):
        alone = sorted(set(a) - set(b))
        if alone:
            raise ValueError(f"corrupted: {str(a[alone[0]])!r} has no partner of the same name in {what}/ "
                             f"({len(alone)} unpaired file{'s' if len(alone) > 1 else ''})")
    def written(sub: str, f: Path) -> str:
        return str(Path(spec) / sub / f.name)

    return [(written(PAIRS_NOISY, noisy[k]), written(PAIRS_CLEAN, clean[k])) for k in noisy]


def image_size(name: str) -> tuple[int, int]:
    """(height, width) of a bundled image or a file (tasks.inputs.resolve), from the header when it
    can (no decode of a file's pixels). Raises ValueError naming the image when it cannot."""
    if name in BUNDLED:
        return read_array(name).shape[:2]
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the limits are check_image_file's job, with its own message
    try:
        with Image.open(inputs.resolve(name)) as im:  # the driver's file, or its copy on this node
            w, h = im.size
    except Exception as e:  # PIL raises OSError, SyntaxError, ... for a file that is no image
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise ValueError(f"{name!r} is not an image that decodes ({reason})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return h, w


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_image(name: str, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize to `size`: returns (1, 3, size, size) in [0, 1]."""
    a = read_array(name)
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    a = a[top : top + s, left : left + s]
    im = Image.fromarray((a * 255.0 + 0.5).astype(np.uint8))
    if s != size:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)  # (H, W, 3)
    return x.permute(2, 0, 1).unsqueeze(0).contiguous()  # (1, 3, H, W)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    x = image.detach().to("cpu", torch.float32).reshape(-1, *image.shape[-2:])
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    x = x[:3].clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


def png_bytes(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def image_available(name: str) -> bool:
    """True when `load_image(name, ...)` can find the image in this process."""
    return name in BUNDLED or inputs.exists(name)
