"""Validated parameters of the `dip` and `dip-baseline` kinds.

Both are pydantic models with extra="forbid" that check everything at construction, so a
sweep fails before any trial starts. A bad field raises pydantic.ValidationError located at
that field, with its value and what is allowed.

Normalisation (so a run_id hashed from model_dump depends only on what matters):
- region, region_place and masked_loss apply only to inpainting: for denoise they become
  None whatever was given.
- sigma defaults to 0.1 for denoise and 0 for inpaint; it is the strength of the `noise`
  type: gaussian the std, poisson the std at mid-gray (peak = 0.5 / sigma**2), impulse the
  fraction of values replaced by salt or pepper, speckle the std of the multiplicative noise;
  head defaults per architecture (report for seed-*, sigmoid for skip); snapshots default
  to 5 evenly spaced steps ending at the last iteration.
- detectors: None (the default) attaches every early-stopping detector in
  `priorlab.tasks.dip.detectors.DETECTORS`; "none" or [] attaches none; names are deduplicated, in
  the registry's order. `stop` names the detector that ends the run; it is attached if
  the list lacks it.
"""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

from priorlab.tasks import inputs
from priorlab.tasks.images import BUNDLED, image_available
from priorlab.tasks.dip import losses
from priorlab.tasks.dip.inputs import NATIVE, canvas, check_corrupted, check_crop_size, check_mask, shape_of
from priorlab.tasks.dip.detectors import DETECTORS
from priorlab.tasks.dip.models import ARCHS, DEFAULT_HEAD, check_builder, check_size
from priorlab.tasks.plugins import is_plugin, resolve

MIN_BOTTLENECK = 4  # the deepest feature map must be at least 4x4 pixels
AUTO = "auto"  # the `sigma` value that estimates the noise level from the corrupted file
NO_STOP = "none"  # `stop: none`: run every iteration even without a clean reference
# The stop rule of a run with no clean reference unless it names one: the best detector with
# the noise level estimated, as tests/benchmarks/bench_blind.py measures them.
BLIND_STOP = "rw"
INPAINT_ONLY = ("region", "region_place", "masked_loss")
INPAINT_DEFAULTS = {"region": 32, "region_place": "centre", "masked_loss": True}


def check_image(name: str) -> str:
    if image_available(name):  # bundled, a file here, or the driver's file copied to this node
        return name
    path = inputs.resolve(name)
    if path.is_dir():
        raise ValueError(f"{name!r} is a folder: a run takes one image (the sweep expands folders)")
    if not path.is_file():
        raise ValueError(f"{name!r} is neither a bundled scikit-image name ({', '.join(BUNDLED)}) nor an existing file")
    return name


def check_noise_model(names: list[str], data: dict) -> list[str]:
    """`dp` compares the residual with the noise level: a corrupted file it must denoise needs one."""
    if "dp" in names and data.get("corrupted") is not None and data.get("task") == "denoise" \
            and data.get("sigma") == 0:
        raise ValueError("dp needs the noise level of your corrupted file and sigma is 0: give sigma (0..1) "
                         "or auto, or leave dp out (detectors, stop)")
    return names


def _nearest(name: str, allowed) -> str:
    same_case = [a for a in allowed if a.lower() == str(name).lower()]  # `Skip`, `L2`
    close = same_case or difflib.get_close_matches(name, list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# Upper bounds, so a typo'd value is refused up front instead of overflowing a 64-bit integer
# in the store or asking for memory no machine has inside a trial (`width: 100000000` is a
# network of ~10^17 weights). The report's widths are 8..256; 4096 leaves room for plug-ins.
SEED_MAX = 2**63 - 1
WIDTH_MAX = 4096
STEPS_MAX = 10**9


def check_detectors(names: Any) -> list[str]:
    """None -> every detector; "none"/""/[] -> none; "a,b" or [a, b] -> those, deduplicated."""
    if names is None:
        return list(DETECTORS)
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    if not isinstance(names, (list, tuple)):  # `detectors: 5` or `true`
        raise ValueError(f"expected a list of detector names (allowed: {', '.join(DETECTORS)}), or none; "
                         f"got {names!r}")
    names = [str(n).strip() for n in names if str(n).strip()]
    if names == ["none"]:
        return []
    for n in names:
        if n not in DETECTORS:
            allowed = ", ".join(DETECTORS)
            raise ValueError(f"unknown detector {n!r} (allowed: {allowed}, or none){_nearest(n, DETECTORS)}")
    return [d for d in DETECTORS if d in names]


def check_region(region: int | None, info: ValidationInfo) -> int | None:
    size = info.data.get("size")
    if size == NATIVE:
        size = min(shape_of(info.data) or (0,)) or None
    if region is not None and size is not None and region >= size:
        raise ValueError(f"region {region} must be smaller than the image size {size} (allowed: 1..{size - 1})")
    return region


# Methods that need a package priorlab does not require: (module, how to install it).
OPTIONAL = {"bm3d": ("bm3d", "pip install 'priorlab[bm3d]' (or pip install bm3d)"), "wavelet": ("pywt", "pip install PyWavelets")}


def missing_package(method: str) -> str | None:
    """A message when `method` needs a module that is not installed, else None."""
    if method in OPTIONAL and importlib.util.find_spec(OPTIONAL[method][0]) is None:
        module, how = OPTIONAL[method]
        return f"method {method!r} needs the optional package {module!r}, which is not installed: {how}"
    return None


def fill_task_defaults(data: Any, fields: dict) -> Any:
    """Before validation: drop inpainting-only fields for denoise, fill per-task defaults."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    inpaint = data.get("task", "denoise") == "inpaint"
    for k in INPAINT_ONLY:
        if k in fields:  # (the baselines have no masked_loss)
            data[k] = (INPAINT_DEFAULTS[k] if data.get(k) is None else data[k]) if inpaint else None
    own = data.get("corrupted") is not None  # the user's corrupted file: no default reference
    if data.get("image") is None:
        data["image"] = None if own else "astronaut"
    if data.get("size") is None:
        data["size"] = NATIVE if own else 256
    if data.get("mask") is not None:  # the user's mask replaces the square hole
        data["region"] = data["region_place"] = None
    if data.get("sigma") is None:
        data["sigma"] = 0.0 if inpaint else ("auto" if own else 0.1)
    return data


def parse_size(value: Any) -> Any:
    """`native`, or an integer 16..4096 (a string from the CLI or a config included)."""
    if value == NATIVE or isinstance(value, bool):
        return value
    try:
        n = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None or not 16 <= n <= 4096:
        raise ValueError(f"{value!r} is neither an integer 16..4096 nor 'native' (the image's own height and width)")
    return n


def parse_sigma(value: Any) -> Any:
    """`auto`, or a number in [0, 1] (pixel units; 25 on a 0-255 scale is 0.1)."""
    if value == AUTO or isinstance(value, bool):
        return value
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = None
    if x is None or not 0 <= x <= 1:  # (NaN fails both comparisons)
        hint = (f"; sigma is in 0-1 units (pixel values 0..1): {value} on a 0-255 scale is "
                f"{value}/255 = {float(value) / 255:.3g}") if x is not None and 1 < x <= 255 else ""
        raise ValueError(f"{value!r} is neither a noise strength in [0, 1] nor 'auto'{hint}")
    return x


class BaseParams(BaseModel):
    """What a run is measured on: one image and one degradation. Shared by dip and baselines.

    Each field's description is its `--help` line in `priorlab dip` / `priorlab baseline`.
    """

    # allow_inf_nan=False: `--lr inf` or a NaN sigma is refused here, not found as a black image later.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: Literal["denoise", "inpaint"] = Field("denoise", description="the degradation to undo")
    image: str | None = Field("astronaut", description="a bundled scikit-image name (astronaut, chelsea, coffee, "
                              "camera, rocket, ...) or an image file; with corrupted: its clean reference, "
                              "optional (default astronaut, none with corrupted)")
    corrupted: str | None = Field(None, description="your own corrupted image file, fitted as it is (priorlab "
                                  "adds no noise); image is then its optional clean reference")
    mask: str | None = Field(None, validate_default=True, description="inpaint: an image file of the image's size whose non-zero pixels "
                             "are known (replaces region)")
    size: int | Literal["native"] = Field(
        256, description="16..4096: the image is centre-cropped and resized to size x size pixels (a corrupted "
        "file is cropped, never resized); native: its own height and width (default 256, native with corrupted)")
    sigma: float | Literal["auto"] = Field(
        0.1, description="noise strength in [0, 1] pixel units, per noise type: gaussian its std, poisson the std at "
        "mid-gray, impulse the salt-and-pepper fraction, speckle the multiplicative std; with corrupted: the "
        "level the detectors assume, auto = estimated from it (default 0.1 for denoise, 0 for inpaint, auto with "
        "corrupted)")
    noise: Literal["gaussian", "poisson", "impulse", "speckle"] = Field(
        "gaussian",
        description="noise type; sigma is its strength: gaussian = the std, poisson = the std at mid-gray "
        "(peak 0.5/sigma^2), impulse = the fraction of salt-and-pepper values, speckle = the multiplicative std",
    )
    region: int | None = Field(None, ge=1, description="inpaint only: side in pixels of the blanked square, "
                               "smaller than size (default 32; the report used 32 and 64)")
    region_place: Literal["centre", "random"] | None = Field(
        None, description="inpaint only: where the square is blanked; random is drawn from the seed (default centre)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="seeds the noise, the mask, the network input and the weights")

    @model_serializer(mode="wrap")
    def _omit_unused_files(self, handler) -> dict:
        """Runs without these files keep the run ids they had before the fields existed."""
        dumped = handler(self)
        for k in ("corrupted", "mask"):
            if dumped.get(k) is None:
                dumped.pop(k, None)
        return dumped

    @field_validator("image")
    @classmethod
    def _image_exists(cls, name: str | None) -> str | None:
        return name if name is None else check_image(name)

    @field_validator("corrupted")
    @classmethod
    def _corrupted_fits(cls, name: str | None, info: ValidationInfo) -> str | None:
        return name if name is None else check_corrupted(check_image(name), info.data)

    @field_validator("mask")
    @classmethod
    def _mask_fits(cls, name: str | None, info: ValidationInfo) -> str | None:
        return check_mask(name if name is None else check_image(name), info.data)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value)

    @field_validator("size")
    @classmethod
    def _size_fits(cls, size: int | str, info: ValidationInfo) -> int | str:
        return check_crop_size(size, info.data)

    @field_validator("sigma", mode="before")
    @classmethod
    def _sigma(cls, value: Any) -> Any:
        return parse_sigma(value)

    @field_validator("sigma")
    @classmethod
    def _sigma_needs(cls, sigma: float | str, info: ValidationInfo) -> float | str:
        if sigma == AUTO and "corrupted" in info.data and info.data["corrupted"] is None:
            raise ValueError("'auto' estimates the noise of your corrupted file: give corrupted, or a number "
                             "(without corrupted, priorlab adds the noise itself and sigma is its strength)")
        return sigma

    def input_files(self) -> list[inputs.InputFile]:
        """The files this run reads (tasks/inputs.py): its image files, but bundled images."""
        return [inputs.InputFile(field, name, "image") for field in ("image", "corrupted", "mask")
                for name in [getattr(self, field)] if name is not None and name not in BUNDLED]

    @field_validator("region")
    @classmethod
    def _region_fits(cls, region: int | None, info: ValidationInfo) -> int | None:
        return check_region(region, info)


class DipParams(BaseParams):
    """One Deep Image Prior fit. Field order matters: validators see earlier fields."""

    # How a run executes, not what it computes: left out of its run id (cluster/config.py), so
    # switching it on keeps a sweep's runs and the runs stored before the field existed.
    RUN_ID_EXCLUDES: ClassVar[tuple[str, ...]] = ("compile",)

    arch: Literal["seed-double", "seed-single", "skip"] | str = Field(
        "seed-double", description="the network: the report's two encoder-decoders (seed-double doubles "
        "channels per level, seed-single has one conv per level), the DIP paper's skip net, or your own "
        "package.module:builder (see tasks/plugins.py)")
    depth: int = Field(2, ge=1, le=10, description="encoder levels; size must be divisible by 2**depth and "
                       "at least 4*2**depth")
    width: int = Field(128, ge=1, le=WIDTH_MAX, description="channels at the first level (seed-*: doubling per level)")
    head: Literal["report", "sigmoid", "linear"] | None = Field(
        None, description="the output layer: report = BatchNorm+LeakyReLU (unbounded), sigmoid, or linear "
        "(default: report for seed-*, sigmoid for skip)")
    input_depth: int = Field(32, ge=1, le=WIDTH_MAX, description="channels of the fixed noise input")
    loss: Literal["l1", "l2", "kl"] | str = Field("l2", description="l1 = mean absolute error, l2 = mean "
                                                  "squared error, kl = KL between per-channel spatial softmaxes, "
                                                  "or your own package.module:function")
    masked_loss: bool | None = Field(None, description="inpaint only: loss on the known pixels only, as in DIP "
                                     "(default); --no-masked-loss = the report's loss over the whole image")
    iterations: int = Field(1000, ge=1, le=STEPS_MAX, description="optimisation steps")
    lr: float = Field(0.01, gt=0, description="Adam learning rate")
    reg_noise_std: float = Field(0.0, ge=0, description="std of fresh noise added to the network input each "
                                 "step (DIP's regulariser; 0 = off)")
    log_every: int = Field(50, ge=1, le=STEPS_MAX, description="record metrics every N steps")
    snapshots: list[int] | None = Field(None, description="steps (1..iterations) whose output image is saved "
                                        "(default: 5 evenly spaced, ending at the last)")
    device: str = Field("auto", description="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or mps")
    amp: bool = Field(False, description="bf16 autocast; CUDA only (ignored on CPU)")
    channels_last: bool = Field(False, description="channels-last memory format; CUDA only (ignored on CPU)")
    compile: bool = Field(False, description="torch.compile the network for the fixed-shape training step (CUDA: "
                          "mode reduce-overhead, i.e. CUDA graphs); same results in distribution; unpacked runs only; "
                          "off by default (tests/benchmarks/bench_compile.py measures it)")
    detectors: list[str] | None = Field(
        None,
        validate_default=True,  # None becomes the full list, so a run's params say what it carried
        description="early-stopping detectors that record where they would stop, without changing the fit "
        f"(default: all of {', '.join(DETECTORS)}; none: no detector)",
    )
    stop: str | None = Field(
        None,
        validate_default=True,  # a run with no reference gets BLIND_STOP, and its params say so
        description=f"end the run when this detector decides to stop ({', '.join(DETECTORS)}), or none: run all "
        f"iterations (default: all iterations with a clean reference, {BLIND_STOP} without one)",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = fill_task_defaults(data, cls.model_fields)
        if isinstance(data, dict) and data.get("head") is None and data.get("arch", "seed-double") in DEFAULT_HEAD:
            data["head"] = DEFAULT_HEAD[data.get("arch", "seed-double")]
        return data

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        if is_plugin(arch):
            resolve(arch)  # imports now: a typo fails before anything starts
        elif arch not in ARCHS:
            raise ValueError(f"{arch!r} is neither a built-in architecture ('seed-double', 'seed-single' or "
                             f"'skip') nor a plug-in 'package.module:builder'{_nearest(arch, ARCHS)}")
        return arch

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, loss: str) -> str:
        if is_plugin(loss):
            losses.check_loss(loss)
        elif loss not in losses.LOSSES:
            raise ValueError(f"{loss!r} is neither a built-in loss ('l1', 'l2' or 'kl') nor a plug-in "
                             f"'package.module:function'{_nearest(loss, losses.LOSSES)}")
        return loss

    @field_validator("depth")
    @classmethod
    def _depth_fits_size(cls, depth: int, info: ValidationInfo) -> int:
        size = info.data.get("size")
        if size == NATIVE and shape_of(info.data):  # padded up to the multiple (inputs.canvas): only the bottleneck
            side = min(shape_of(info.data))
            if min(canvas(side, side, depth)) < MIN_BOTTLENECK * 2**depth:
                ok = [d for d in range(1, 11) if min(canvas(side, side, d)) >= MIN_BOTTLENECK * 2**d]
                raise ValueError(f"depth {depth} does not fit a native image whose shorter side is {side} px: "
                                 f"it needs at least {MIN_BOTTLENECK}*2**depth; allowed depths: {ok or 'none'}")
            return depth
        if size is not None and size != NATIVE and (size % 2**depth or size < MIN_BOTTLENECK * 2**depth):
            ok = [d for d in range(1, 11) if size % 2**d == 0 and size >= MIN_BOTTLENECK * 2**d]
            raise ValueError(
                f"depth {depth} does not fit size {size}: size must be divisible by 2**depth and at "
                f"least {MIN_BOTTLENECK}*2**depth; allowed depths for size {size}: {ok or 'none'}"
            )
        return depth

    @field_validator("snapshots")
    @classmethod
    def _snapshots_in_range(cls, steps: list[int] | None, info: ValidationInfo) -> list[int] | None:
        n = info.data.get("iterations")
        if steps is None or n is None:
            return steps
        bad = [s for s in steps if not 1 <= s <= n]
        if bad:
            raise ValueError(f"steps {bad} are outside 1..iterations={n}")
        return sorted(set(steps))

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if device != "auto":
            try:
                torch.device(device)
            except (RuntimeError, ValueError):
                raise ValueError(f"{device!r} is not 'auto' or a torch device (cpu, cuda, cuda:1, mps)") from None
        return device

    @field_validator("detectors", mode="before")
    @classmethod
    def _detectors(cls, names: Any) -> list[str]:
        return check_detectors(names)

    @field_validator("detectors")
    @classmethod
    def _detectors_have_noise(cls, names: list[str], info: ValidationInfo) -> list[str]:
        return check_noise_model(names, info.data)

    @field_validator("stop")
    @classmethod
    def _stop(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and name != NO_STOP and name not in DETECTORS:
            allowed = ", ".join([*DETECTORS, NO_STOP])
            raise ValueError(f"unknown detector {name!r} (allowed: {allowed}){_nearest(name, DETECTORS)}")
        blind = info.data.get("corrupted") is not None and info.data.get("image") is None
        if name is None and blind:  # no oracle: the answer is where a detector stops (README: Your own images)
            name = BLIND_STOP
        if name == NO_STOP and not blind:
            name = None  # with a reference, running every iteration is the default: one spelling, one run id
        if name in DETECTORS and "detectors" in info.data:  # (a failed detectors check said it already)
            check_noise_model([name], info.data)
        return name

    @model_validator(mode="after")
    def _plugin_builds(self) -> "DipParams":
        if is_plugin(self.arch):
            if self.head is not None:
                raise ValueError(f"head {self.head!r}: a plug-in architecture ({self.arch}) has its own head; drop head")
            check_builder(self.arch, self.depth, self.width, self.input_depth)
        else:
            check_size(self.arch, self.depth, self.width, self.input_depth, self.head)
        return self

    @model_validator(mode="after")
    def _default_snapshots(self) -> "DipParams":
        if self.stop in DETECTORS and self.stop not in self.detectors:  # the stopping detector is attached
            self.detectors = [d for d in DETECTORS if d in {*self.detectors, self.stop}]
        if self.snapshots is None:
            n = self.iterations
            self.snapshots = sorted({max(1, round(n * k / 5)) for k in range(1, 6)})
        return self


class BaselineParams(BaseParams):
    """A classical restoration on the same degradation: the reference DIP is measured against."""

    method: Literal["nlm", "tv", "wavelet", "bm3d", "biharmonic"] = Field(
        "nlm", description="denoise: nlm (non-local means), tv (total variation), wavelet, bm3d (optional "
        "package); inpaint: biharmonic")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return fill_task_defaults(data, cls.model_fields)

    @field_validator("method")
    @classmethod
    def _method_fits_task(cls, method: str, info: ValidationInfo) -> str:
        task = info.data.get("task")
        if task == "inpaint" and method != "biharmonic":
            raise ValueError(f"{method!r} denoises; for task 'inpaint' the allowed method is 'biharmonic'")
        if task == "denoise" and method == "biharmonic":
            raise ValueError("'biharmonic' inpaints; for task 'denoise' allowed methods are nlm, tv, wavelet, bm3d")
        if missing_package(method):
            raise ValueError(missing_package(method))
        return method
