"""What every StyleGAN job shares: the common parameters, the generator and batched rendering."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torchvision.utils import make_grid

from priorlab import vocab
from priorlab.tasks import inputs

from ..checkpoints import load_generator
from ..classifiers import Classifier, ClassifierConfig, load_classifier
from ..networks import Generator, to_unit
from ..util import randn, resolve_device, rng

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_RANDOM = re.compile(r"^random:(\d+)(\?.*)?$")


class StyleGANParams(BaseModel):
    """Fields every StyleGAN job takes."""

    # allow_inf_nan=False: a NaN truncation would render black images instead of failing here.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    generator: str = Field(default="random:32", description="random:RES (seeded, RES = 4*2^k), an NVIDIA "
                           ".pkl (PATH.pkl[#KEY]), or a priorlab/rosinality .pt/.pth checkpoint")
    seed: int = Field(default=0, ge=0, description="seeds every latent this job draws")
    device: str = Field(default="auto", description="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or mps")
    precision: Literal["fp32", "fp16", "bf16"] = Field(default="fp32", description="synthesis precision "
                                                        "(fp16/bf16 by autocast)")
    truncation_psi: float = Field(default=1.0, ge=-1.0, le=2.0, description="truncation psi toward the mean w "
                                  "(1 = none, 0.7 = typical, 0 = the mean face)")
    truncation_cutoff: int | None = Field(default=None, ge=1, description="truncate only the first N style "
                                          "layers (default: all)")
    noise_mode: Literal["const", "random", "none"] = Field(default="const", description="per-layer noise: the "
                                                           "stored constant, seeded random, or none")
    batch_size: int = Field(default=16, ge=1, le=1024, description="images rendered at once")

    @field_validator("generator")
    @classmethod
    def _generator(cls, v: str) -> str:
        m = _RANDOM.match(v)
        if m:
            res = int(m.group(1))
            if res < 4 or res & (res - 1):
                raise ValueError(f"generator: {v!r}: resolution {res} is not allowed (4 * 2^k: 4, 8, 16, 32, 64, ...)")
            return v
        path = v.partition("#")[0]
        if not path.endswith((".pkl", ".pt", ".pth")):
            raise ValueError(f"generator: {v!r} is not allowed (allowed: random:RES, or a .pkl (NVIDIA), "
                             ".pt/.pth (priorlab or rosinality) checkpoint path)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise ValueError(f"device: {v!r} is not allowed (allowed: auto, cpu, cuda, cuda:N, mps)")
        return v

    def input_files(self) -> list[inputs.InputFile]:
        """The files this job reads (tasks/inputs.py); subclasses add theirs."""
        if _RANDOM.match(self.generator):
            return []
        path, _, key = self.generator.partition("#")
        return [inputs.InputFile("generator", path, "generator", key)]


class ClassifiedParams(StyleGANParams):
    """Jobs that score images with an attribute classifier."""

    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig, description="the attribute "
                                         "classifier: source, positive class, threshold (a nested block)")
    calibration_samples: int = Field(default=256, ge=8, le=100_000, description="images that calibrate a "
                                     "builtin classifier's center/scale on this generator")

    def input_files(self) -> list[inputs.InputFile]:
        return [*super().input_files(), *self.classifier.input_files("classifier")]


# ---------------------------------------------------------------------------------------------

_CACHE: dict[tuple, Generator] = {}
_CACHE_LOCK = threading.Lock()


def get_generator(spec: str, device: torch.device) -> Generator:
    """Load once per process (trials in one worker share it; the generator is never modified)."""
    if not spec.startswith("random:"):  # the driver's file, or its copy on this node
        path, sep, key = spec.partition("#")
        spec = str(inputs.resolve(path)) + sep + key
    path = spec.partition("#")[0]
    stamp = os.path.getmtime(path) if not spec.startswith("random:") and os.path.exists(path) else None
    key = (spec, str(device), stamp)
    with _CACHE_LOCK:
        if key not in _CACHE:
            if len(_CACHE) >= 4:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = load_generator(spec, device=device)
        return _CACHE[key]


class Renderer:
    """A generator plus the job's rendering settings; all outputs are (N, 3, H, W) in [0, 1]."""

    def __init__(self, params: StyleGANParams) -> None:
        self.params = params
        self.device = resolve_device(params.device)
        self.G = get_generator(params.generator, self.device)
        self._noise = rng(params.seed, "noise", device=self.device) if params.noise_mode == "random" else None

    def z(self, n: int, *stream: object) -> torch.Tensor:
        """(n, z_dim) standard normal from a named, seeded stream (same numbers on every device)."""
        return randn((n, self.G.z_dim), self.params.seed, *stream, device=self.device)

    def truncate(self, w: torch.Tensor) -> torch.Tensor:
        """Truncation toward w_avg on single w vectors (N, w_dim) (the cutoff applies in `images_w`)."""
        if self.params.truncation_cutoff is not None:
            return w
        return self.G.mapping.truncate(w, truncation_psi=self.params.truncation_psi)

    @torch.no_grad()
    def map(self, z: torch.Tensor, truncate: bool = True) -> torch.Tensor:
        """z (N, z_dim) -> w (N, w_dim), truncated unless asked not to."""
        out = []
        for chunk in z.split(max(self.params.batch_size, 256)):
            out.append(self.G.mapping(chunk.to(self.device))[:, 0])
        w = torch.cat(out)
        return self.truncate(w) if truncate else w

    @torch.no_grad()
    def images_w(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim), already truncated -> images; the truncation cutoff, if any, is applied here."""
        out = []
        for chunk in w.split(self.params.batch_size):
            ws = chunk.to(self.device).unsqueeze(1).repeat(1, self.G.num_ws, 1)  # (B, num_ws, w_dim)
            if self.params.truncation_cutoff is not None:
                ws = self.G.mapping.truncate(ws, truncation_psi=self.params.truncation_psi,
                                             truncation_cutoff=self.params.truncation_cutoff)
            with self._autocast():
                img = self.G.synthesis(ws, noise_mode=self.params.noise_mode, noise_generator=self._noise)
            out.append(to_unit(img.float()))
        return torch.cat(out)

    def images_z(self, z: torch.Tensor) -> torch.Tensor:
        return self.images_w(self.map(z))

    def _autocast(self):
        if self.params.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.params.precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def make_classifier(params: ClassifiedParams, renderer: Renderer) -> Classifier:
    """Load the classifier; builtins with "auto" center/scale calibrate on this generator's images."""
    clf = load_classifier(params.classifier, device=renderer.device)
    if clf.needs_calibration:
        z = randn((params.calibration_samples, renderer.G.z_dim), params.seed, "calibration",
                  device=renderer.device)
        clf.calibrate(renderer.images_z(z))
    return clf


@torch.no_grad()
def score(clf: Classifier, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([clf(chunk) for chunk in images.split(batch_size)]).float()


def strip(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(N, 3, H, W) -> one (3, H', W') image: a row (or rows of `nrow`) with 2-px white gaps."""
    return make_grid(images.detach().cpu(), nrow=nrow or images.shape[0], padding=2, pad_value=1.0)


def summary_base(params: StyleGANParams, renderer: Renderer) -> dict:
    G = renderer.G
    return {"status": vocab.DONE, "resolution": G.img_resolution, "z_dim": G.z_dim, "w_dim": G.w_dim,
            "device": str(renderer.device)}
