"""Attribute classifiers as plug-ins: images (N, 3, H, W) in [0, 1] -> P(positive class) (N,).

`source` forms:
  builtin:NAME              an image statistic through a sigmoid: p = sigmoid((stat - center) / scale);
                            NAME in brightness, contrast, redness, greenness, blueness, saturation.
                            center/scale "auto" calibrate on the job's own generator (median, std / 4).
  torchscript:PATH          a TorchScript module (`torch.jit.load`)
  torchvision:ARCH          a torchvision architecture (e.g. resnet18) with `weights` (a state-dict
                            file, loaded weights_only) and `labels` (its output classes); nothing
                            is downloaded
  python:MODULE:FUNCTION    a Python callable (also accepted without the `python:` prefix)

Model outputs become probabilities by `output`: "auto" = softmax over C >= 2 outputs, sigmoid
of a single logit (a python callable's single output is taken as a probability), or say
"prob", "logit", "softmax". The positive class is `positive` (its name, looked up in `labels`)
or `positive_index`. The label of an image is `p >= threshold`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from priorlab.tasks.inputs import resolve  # the driver's file, or its copy on this node
from priorlab.tasks.plugins import PYTHONPATH_HINT

from .checkpoints.torch_file import torch_load

BUILTINS = ("brightness", "contrast", "redness", "greenness", "blueness", "saturation")
SCHEMES = ("builtin", "torchscript", "torchvision", "python")
_LUMA = (0.299, 0.587, 0.114)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ClassifierConfig(BaseModel):
    """Which classifier, which class is positive, and how its output becomes P(positive)."""

    model_config = ConfigDict(extra="forbid")

    source: str = "builtin:brightness"
    weights: str | None = None
    labels: list[str] | None = None
    positive: str = "positive"
    negative: str = "negative"
    positive_index: int | None = Field(default=None, ge=0)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    center: float | Literal["auto"] = "auto"
    scale: float | Literal["auto"] = "auto"
    input_size: int | None = Field(default=None, ge=8, le=2048)
    normalize: Literal["auto", "none", "imagenet", "minus_one_one"] = "auto"
    output: Literal["auto", "prob", "logit", "softmax"] = "auto"

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        scheme, _, rest = v.partition(":")
        if scheme == "builtin":
            if rest not in BUILTINS:
                raise ValueError(f"source: builtin {rest!r} is not allowed (allowed: {', '.join(BUILTINS)})")
        elif scheme in ("torchscript", "torchvision"):
            if not rest:
                raise ValueError(f"source: {v!r} needs a {'path' if scheme == 'torchscript' else 'architecture'}")
        elif scheme == "python":
            if rest.count(":") != 1:
                raise ValueError(f"source: {v!r} must be python:MODULE:FUNCTION")
        elif not (scheme and rest and ":" not in rest):
            raise ValueError(f"source: {v!r} is not allowed (allowed: builtin:NAME, torchscript:PATH, "
                             "torchvision:ARCH, python:MODULE:FUNCTION or MODULE:FUNCTION)")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and v <= 0:
            raise ValueError(f"scale: {v} is not allowed (must be > 0 or 'auto')")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ClassifierConfig":
        if self.scheme == "torchvision":
            if not self.weights:
                raise ValueError("weights: torchvision classifiers need a weights file (nothing is downloaded)")
            if not self.labels:
                raise ValueError("labels: torchvision classifiers need the names of their output classes")
        if self.labels and self.positive_index is None and len(self.labels) > 1 and self.positive not in self.labels:
            raise ValueError(f"positive: {self.positive!r} is not one of labels ({', '.join(self.labels)})")
        if self.labels and self.positive_index is not None and self.positive_index >= max(len(self.labels), 2):
            raise ValueError(f"positive_index: {self.positive_index} is out of range for {len(self.labels)} labels")
        return self

    @property
    def scheme(self) -> str:
        scheme = self.source.partition(":")[0]
        return scheme if scheme in SCHEMES else "python"

    @property
    def needs_calibration(self) -> bool:
        return self.scheme == "builtin" and (self.center == "auto" or self.scale == "auto")

    def input_files(self, field: str) -> list:
        """The files this classifier reads (tasks/inputs.py), under the parameter `field`."""
        from priorlab.tasks.inputs import InputFile

        if self.scheme == "torchscript":
            return [InputFile(f"{field}.source", self.source.partition(":")[2], "torchscript")]
        if self.scheme == "torchvision" and self.weights:
            return [InputFile(f"{field}.weights", self.weights, "state_dict")]
        return []


def image_statistic(name: str, images: torch.Tensor) -> torch.Tensor:
    """A built-in statistic per image: (N, 3, H, W) in [0, 1] -> (N,)."""
    r, g, b = images[:, 0], images[:, 1], images[:, 2]  # (N, H, W) each
    luma = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    if name == "brightness":
        s = luma.mean(dim=(1, 2))
    elif name == "contrast":
        s = luma.flatten(1).std(dim=1)
    elif name == "redness":
        s = (r - (g + b) / 2).mean(dim=(1, 2))
    elif name == "greenness":
        s = (g - (r + b) / 2).mean(dim=(1, 2))
    elif name == "blueness":
        s = (b - (r + g) / 2).mean(dim=(1, 2))
    elif name == "saturation":
        s = (images.amax(dim=1) - images.amin(dim=1)).mean(dim=(1, 2))
    else:
        raise ValueError(f"builtin {name!r} is not allowed (allowed: {', '.join(BUILTINS)})")
    return s.float()


class Classifier:
    """`clf(images) -> (N,)` probabilities of `clf.positive`; `clf.label(p)` -> 0/1."""

    def __init__(self, cfg: ClassifierConfig, model: Callable[[torch.Tensor], torch.Tensor] | None,
                 device: torch.device) -> None:
        self.cfg, self.model, self.device = cfg, model, device
        self.positive, self.negative, self.threshold = cfg.positive, cfg.negative, cfg.threshold
        self.center = None if cfg.center == "auto" else float(cfg.center)
        self.scale = None if cfg.scale == "auto" else float(cfg.scale)

    @property
    def needs_calibration(self) -> bool:
        return self.cfg.scheme == "builtin" and (self.center is None or self.scale is None)

    def calibrate(self, images: torch.Tensor) -> None:
        """Builtins with "auto" center/scale: centre on the median statistic of these images."""
        stat = image_statistic(self.cfg.source.partition(":")[2], images.to(self.device))
        if self.center is None:
            self.center = float(stat.median())
        if self.scale is None:
            self.scale = max(float(stat.std()) / 4.0, 1e-4) if stat.numel() > 1 else 1e-2

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32)
        if self.cfg.scheme == "builtin":
            if self.needs_calibration:
                raise RuntimeError("builtin classifier with center/scale 'auto' used before calibrate()")
            stat = image_statistic(self.cfg.source.partition(":")[2], x)
            return torch.sigmoid((stat - self.center) / self.scale)
        x = self._prepare(x)
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return self._to_prob(torch.as_tensor(out, device=self.device).float())

    def label(self, probs: torch.Tensor) -> torch.Tensor:
        return (probs >= self.threshold).to(torch.int64)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.input_size and x.shape[-1] != self.cfg.input_size:
            x = F.interpolate(x, size=(self.cfg.input_size, self.cfg.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        norm = self.cfg.normalize
        if norm == "auto":
            norm = "imagenet" if self.cfg.scheme == "torchvision" else "none"
        if norm == "imagenet":
            mean = torch.tensor(_IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(_IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        elif norm == "minus_one_one":
            x = x * 2 - 1
        return x

    def _to_prob(self, out: torch.Tensor) -> torch.Tensor:
        mode = self.cfg.output
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim == 1:
            if mode == "softmax":
                raise ValueError("output: 'softmax' needs at least two outputs per image; the model gives one")
            if mode == "prob" or (mode == "auto" and self.cfg.scheme == "python"):
                return out.clamp(0, 1)
            return torch.sigmoid(out)
        if out.ndim != 2:
            raise ValueError(f"classifier output has shape {tuple(out.shape)}; expected (N,) or (N, C)")
        idx = self._positive_index(out.shape[1])
        if mode in ("auto", "softmax"):
            return out.softmax(dim=1)[:, idx]
        if mode == "logit":
            return torch.sigmoid(out[:, idx])
        return out[:, idx].clamp(0, 1)

    def _positive_index(self, n: int) -> int:
        if self.cfg.positive_index is not None:
            idx = self.cfg.positive_index
        elif self.cfg.labels and self.cfg.positive in self.cfg.labels:
            idx = self.cfg.labels.index(self.cfg.positive)
        elif n == 2:
            idx = 1
        else:
            raise ValueError(f"positive: the classifier has {n} outputs; name the positive class in labels "
                             "or give positive_index")
        if idx >= n:
            raise ValueError(f"positive_index: {idx} is out of range for {n} outputs")
        return idx


def load_classifier(cfg: ClassifierConfig | dict | str, device: torch.device | str = "cpu") -> Classifier:
    """Build the classifier a config names (no weights are ever downloaded)."""
    if isinstance(cfg, str):
        cfg = ClassifierConfig(source=cfg)
    elif isinstance(cfg, dict):
        cfg = ClassifierConfig(**cfg)
    device = torch.device(device)
    scheme, _, rest = cfg.source.partition(":")
    model: Any = None
    if scheme == "builtin":
        model = None
    elif scheme == "torchscript":
        model = torch.jit.load(str(resolve(rest)), map_location=device).eval()
    elif scheme == "torchvision":
        model = _torchvision_model(rest, cfg).to(device).eval()
    else:
        target = rest if scheme == "python" else cfg.source
        module_name, _, func_name = target.partition(":")
        try:
            model = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"source: cannot import {target!r}: {e}; {PYTHONPATH_HINT}") from e
        if not callable(model):
            raise ValueError(f"source: {target!r} is not callable")
    return Classifier(cfg, model, device)


def _torchvision_model(arch: str, cfg: ClassifierConfig) -> torch.nn.Module:
    import torchvision

    allowed = torchvision.models.list_models(module=torchvision.models)
    if arch not in allowed:
        raise ValueError(f"source: torchvision architecture {arch!r} is not allowed (e.g. {', '.join(allowed[:8])}, ...)")
    labels = cfg.labels or []
    net = torchvision.models.get_model(arch, weights=None, num_classes=max(len(labels), 1))
    state = torch_load(resolve(cfg.weights))  # weights_only, bounded by the file like a generator checkpoint
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net.load_state_dict(state)
    return net
