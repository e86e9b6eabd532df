"""priorlab's own checkpoint format: the config record and the state dict, with a format version."""

from __future__ import annotations

from pathlib import Path

import torch

from ..networks import Generator, GeneratorConfig
from ..nvidia_pickle import CheckpointError, one_line, short_repr
from .build import build_generator, params_limit

FORMAT = "priorlab-stylegan2"
FORMAT_VERSION = 1


def save_generator(G: Generator, path: str | Path, source: str | None = None) -> Path:
    """priorlab's format: the state dict and the config record, with a format version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": G.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()},
        "source": source,
    }
    torch.save(record, path)
    return path


def load_native(path: Path, ckpt: dict) -> Generator:
    """A generator from a record `save_generator` wrote (as `torch.load` read it); a newer version is refused."""
    version = ckpt.get("version")
    if type(version) is not int:
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: 'version' is {short_repr(version)}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this priorlab "
                              f"({FORMAT_VERSION}); upgrade priorlab")
    config, sd = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config, dict) or not isinstance(sd, dict):
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: expected dicts under 'config' and "
                              f"'state_dict', found {short_repr(config)} and {short_repr(sd)}")
    fields = set(GeneratorConfig.__dataclass_fields__)
    unknown = [k for k in config if k not in fields]
    if unknown:
        raise CheckpointError(f"{path}: malformed priorlab checkpoint: unknown config keys "
                              f"{[short_repr(k) for k in unknown[:8]]} (allowed: {', '.join(sorted(fields))})")
    try:
        cfg = GeneratorConfig(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(one_line(f"{path}: malformed priorlab checkpoint: {e}")) from None
    return build_generator(cfg, sd, max_params=params_limit(path))


def is_native(ckpt: object) -> bool:
    """Whether a loaded .pt record is in priorlab's format."""
    return isinstance(ckpt, dict) and ckpt.get("format") == FORMAT
