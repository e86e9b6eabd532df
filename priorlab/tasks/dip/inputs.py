"""What a DIP or baseline run is fitted to: its clean reference, its corrupted image, its mask.

Two ways in (fields of `priorlab.tasks.dip.params.BaseParams`):
- priorlab corrupts (no `corrupted`): `image` is the clean image; `priorlab.tasks.dip.degrade`
  adds noise of type `noise` and strength `sigma` with the run's seed and, for inpainting,
  blanks a `region` square or the user's `mask`.
- the user's own corrupted file (`corrupted: PATH`): fitted exactly as the file holds it.
  `image` is then its optional clean reference (no default: without it the run has no
  oracle, `reference: none`), `mask` the known pixels for inpainting (required then).

Sizes
- `size: N` (an integer): a clean image is centre-cropped to a square and resized to N x N,
  as always. A corrupted file is centre-cropped to N x N *without resampling* (resizing
  would average away the very noise the file holds), so N may not exceed its shorter side;
  the reference and the mask get the same crop.
- `size: native`: the image's own height and width, nothing cropped or resized. The network
  needs sides divisible by 2**depth: it works on a canvas padded up to the next multiple at
  the bottom and right (`canvas`) and its output is cropped back to the image, so the loss,
  the metrics, the detectors and every saved image see exactly the image's own pixels. This
  pads rather than crops so that no pixel of the user's photo is lost (a crop would cut up to
  2**depth - 1 rows and columns) and no invented pixel enters the loss (a reflect-padded
  target would fit the mirrored noise twice); the margin is unconstrained, like an
  inpainting hole nobody looks at. The file limits (`priorlab.tasks.images`) still apply.

Masks: any image file of the image's size; a pixel is known where any channel is non-zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from priorlab.vocab import NO_REFERENCE  # noqa: F401  (re-exported: the summary `reference` without a clean image)
from priorlab.tasks.images import image_size, load_image, read_array, to_tensor

NATIVE = "native"  # the `size` value that keeps the image's own height and width


def source(corrupted: str | None, image: str | None) -> str | None:
    """The file whose pixels the run fits, so whose size the run has."""
    return corrupted if corrupted is not None else image


def canvas(height: int, width: int, depth: int) -> tuple[int, int]:
    """The network's working size: each side rounded up to a multiple of 2**depth."""
    m = 2**depth
    return math.ceil(height / m) * m, math.ceil(width / m) * m


def run_shape(p) -> tuple[int, int]:
    """(height, width) of the images a run's parameters make (reads a header at most)."""
    if p.size != NATIVE:
        return p.size, p.size
    return image_size(source(p.corrupted, p.image))


def shape_of(data: dict) -> tuple[int, int] | None:
    """(height, width) of the file a run fits, from validated fields (None: not known yet)."""
    name = source(data.get("corrupted"), data.get("image"))
    try:
        return None if name is None else image_size(name)
    except ValueError:
        return None  # the file's own check says what is wrong with it


def _describe(shape: tuple[int, int]) -> str:
    return f"{shape[1]} x {shape[0]} pixels"


def check_corrupted(name: str, data: dict) -> str:
    """A corrupted file decodes and, with a clean reference, has the reference's size."""
    shape = image_size(name)
    if data.get("image") is not None:
        ref = image_size(data["image"])
        if ref != shape:
            raise ValueError(f"{name!r} is {_describe(shape)} but its reference image {data['image']!r} is "
                             f"{_describe(ref)}: a reference must have the corrupted image's size")
    return name


def check_mask(name: str | None, data: dict) -> str | None:
    """A mask belongs to inpainting and has the size of the image it masks; inpainting a
    corrupted file needs one (its hole is not priorlab's to know)."""
    if name is None:
        if data.get("task") == "inpaint" and data.get("corrupted") is not None:
            raise ValueError("inpainting your corrupted file needs mask: an image file whose non-zero pixels "
                             "are the known ones")
        return name
    if data.get("task", "denoise") != "inpaint":
        raise ValueError(f"{name!r}: a mask says which pixels are known, for task inpaint (task is "
                         f"{data.get('task')!r})")
    shape, want = image_size(name), shape_of(data)
    if want is not None and shape != want:
        raise ValueError(f"{name!r} is {_describe(shape)} but the image it masks is {_describe(want)}")
    return name


def check_crop_size(size: int | str, data: dict) -> int | str:
    """An integer size crops a corrupted file without resampling, so it must fit inside it."""
    if data.get("corrupted") is None:
        return size
    shape = shape_of(data)
    if size != NATIVE and shape is not None and size > min(shape):
        raise ValueError(f"{size} is larger than the corrupted image ({_describe(shape)}), which is cropped, "
                         f"never resized: allowed 16..{min(shape)} or native")
    return size


def _centre(a: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[top : top + h, left : left + w]


def _square_resized(a: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Centre-crop to a square and resize to size x size, as `load_image` treats a clean image."""
    s = min(a.shape[:2])
    a = _centre(a, s, s)
    if s == size:
        return a
    im = Image.fromarray((a * 255.0 + 0.5).astype(np.uint8)).resize((size, size), resample)
    return np.asarray(im, dtype=np.float32) / 255.0


def _mask(a: np.ndarray) -> torch.Tensor:
    """(H, W, 3) -> (1, 1, H, W): 1 where any channel is non-zero (a known pixel)."""
    known = (a > 0).any(axis=2).astype(np.float32)
    return torch.from_numpy(known)[None, None].contiguous()


def load(p) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(clean or None, the corrupted file or None, the user's mask or None), cropped as the
    module doc says: (1, 3, H, W), (1, 3, H, W), (1, 1, H, W), on the CPU. The corrupted image
    is None when priorlab corrupts the clean one itself."""
    native = p.size == NATIVE
    mask_array = None if p.mask is None else read_array(p.mask)
    if p.corrupted is None:
        clean = to_tensor(read_array(p.image)) if native else load_image(p.image, p.size)
        if mask_array is None:
            return clean, None, None
        if not native:  # the mask follows the clean image's crop; nearest keeps it binary
            mask_array = _square_resized(mask_array, p.size, Image.Resampling.NEAREST)
        return clean, None, _mask(mask_array)
    arrays = [read_array(p.corrupted), None if p.image is None else read_array(p.image), mask_array]
    if not native:  # a square crop of the file's own pixels, never resampled
        arrays = [None if a is None else _centre(a, p.size, p.size) for a in arrays]
    corrupted, clean, mask = arrays
    return (None if clean is None else to_tensor(clean)), to_tensor(corrupted), (None if mask is None else _mask(mask))
