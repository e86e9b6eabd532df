"""`priorlab stylegan convert | generate`: checkpoints in and out, one PNG per seed.

    priorlab stylegan convert IN OUT
    priorlab stylegan generate --checkpoint PATH --seeds 0,1,2 --out DIR [--raw]

Loading a checkpoint is the task's business (`priorlab.tasks.stylegan.checkpoints`); what a
user asks for on the command line, and what is written where, is the CLI's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from priorlab.cluster.cli_errors import CliError, check_out_folder, first_line


def convert(in_path: str, out_path: str | Path) -> Path:
    """Any loadable spec (NVIDIA .pkl, rosinality .pt, random:RES) -> priorlab's format."""
    from priorlab.tasks.stylegan.checkpoints import load_generator, save_generator

    G = load_generator(in_path, device="cpu")
    return save_generator(G, out_path, source=str(in_path))


def nvidia_z(seed: int, z_dim: int):
    """The z NVIDIA's generate.py draws for a seed: `RandomState(seed).randn(1, z_dim)` (float64)."""
    import numpy as np

    return np.random.RandomState(seed).randn(1, z_dim)


def generate(checkpoint: str, seeds: list[int], truncation: float = 1.0, noise_mode: str = "const",
             out_dir: str | Path = "out", raw: bool = False, device: str = "auto",
             class_idx: int | None = None) -> list[Path]:
    """One PNG per seed (`seed0042.png`, as NVIDIA's generate.py); with `raw`, also `raw.npy`:
    float32 (N, 3, H, W), the generator output before the 8-bit conversion."""
    import numpy as np
    import torch
    from PIL import Image

    from priorlab.tasks.stylegan.checkpoints import load_generator
    from priorlab.tasks.stylegan.util import resolve_device

    dev = resolve_device(device)
    G = load_generator(checkpoint, device=dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = None
    if G.c_dim > 0:
        if class_idx is None:
            raise ValueError(f"class_idx: the generator is conditional (c_dim={G.c_dim}); give a class index")
        c = torch.zeros(1, G.c_dim, device=dev)
        c[0, class_idx] = 1
    paths, raws = [], []
    with torch.no_grad():
        for seed in seeds:
            z = torch.from_numpy(nvidia_z(seed, G.z_dim)).to(dev)  # (1, z_dim) float64 as NVIDIA
            img = G(z, c, truncation_psi=truncation, noise_mode=noise_mode)  # (1, 3, H, W)
            raws.append(img[0].float().cpu().numpy())
            u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
            path = out / f"seed{seed:04d}.png"
            Image.fromarray(u8 if u8.shape[2] == 3 else u8[:, :, 0]).save(path)
            paths.append(path)
    if raw:
        path = out / "raw.npy"
        np.save(path, np.stack(raws).astype(np.float32))  # (N, 3, H, W)
        paths.append(path)
    return paths


def _checkpoint_errors() -> tuple[type[BaseException], ...]:
    """What `convert`/`generate` raise for a user's mistake: CheckpointError (any checkpoint that
    cannot be loaded, one line naming the file), ValueError (CUDA asked for but absent, a
    conditional generator), OSError (an output that cannot be written)."""
    from priorlab.tasks.stylegan.checkpoints import CheckpointError

    return (CheckpointError, ValueError, OSError)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-3' ranges as NVIDIA's generate.py; each seed in 0..2**32-1 (numpy's RandomState)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            seeds += list(range(int(lo), int(hi) + 1)) if sep and lo else [int(part)]
        except ValueError:
            raise CliError(f"--seeds {text!r}: {part!r} is not a seed (allowed: integers 0..4294967295, "
                           "comma-separated, or ranges like 0-7)") from None
    if not seeds:
        raise CliError(f"--seeds {text!r} names no seed (e.g. --seeds 0,1,2 or --seeds 0-7)")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise CliError(f"--seeds: {bad[0]} is out of range (allowed: 0..4294967295)")
    return seeds


# StyleGANParams fields that `stylegan generate` takes as flags of another name.
_GENERATE_FLAGS = {"generator": "--checkpoint", "truncation_psi": "--truncation", "device": "--device",
                   "noise_mode": "--noise-mode"}


def cmd_stylegan(args) -> int:
    from priorlab.tasks.stylegan.jobs.common import StyleGANParams

    if args.sg_command == "convert":
        if not str(args.output).endswith((".pt", ".pth")):
            raise CliError(f"output {args.output!r} must end in .pt or .pth (priorlab's format loads by suffix)")
        if Path(args.output).is_dir():
            raise CliError(f"output {args.output!r} is a folder; give a file name ending in .pt")
        check_out_folder("output", str(Path(args.output).parent))
        _validate_generate_flags(StyleGANParams, generator=args.input)
        try:
            convert(args.input, args.output)
        except _checkpoint_errors() as e:
            raise CliError(_naming(args.input, e)) from None
        print(f"wrote {args.output}")
        return 0
    seeds = parse_seeds(args.seeds)
    check_out_folder("--out", args.out)
    _validate_generate_flags(StyleGANParams, generator=args.checkpoint, truncation_psi=args.truncation,
                             device=args.device, noise_mode=args.noise_mode)
    try:
        generate(
            args.checkpoint, seeds=seeds, truncation=args.truncation, noise_mode=args.noise_mode,
            out_dir=args.out, raw=args.raw, device=args.device,
        )
    except _checkpoint_errors() as e:  # a bad or refused checkpoint, CUDA asked for but absent
        raise CliError(_naming(args.checkpoint, e)) from None
    print(f"wrote {len(seeds)} image{'s' if len(seeds) != 1 else ''} to {Path(args.out).resolve()}")
    return 0


def _naming(spec: str, e: BaseException) -> str:
    """One line that names the checkpoint, even when the error itself does not ("Ran out of input")."""
    msg = first_line(e)
    path = spec.partition("#")[0]
    return msg if path in msg or "device" in msg else f"checkpoint {path!r}: {msg}"


def _validate_generate_flags(model: type[BaseModel], **values) -> None:
    """The same checks a StyleGAN job's parameters get (a NaN truncation, a bogus device)."""
    try:
        model(**values)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag = _GENERATE_FLAGS.get(field, field)
        msg = first_line(first["msg"]).removeprefix("Value error, ")
        raise CliError(f"{flag} {values.get(field)!r}: {msg}") from None


def add_parser(sub) -> None:
    """The `stylegan` command and its `convert` and `generate` subcommands."""
    sp = sub.add_parser("stylegan", help="StyleGAN2 checkpoints: convert, generate",
                        description="StyleGAN2 checkpoints: convert, generate")
    sg = sp.add_subparsers(dest="sg_command", required=True)
    c = sg.add_parser("convert", help="write a checkpoint in priorlab's own format",
                      description="write a checkpoint in priorlab's own format")
    c.add_argument("input", help="NVIDIA .pkl (PATH.pkl[#KEY]), rosinality .pt, or random:RES")
    c.add_argument("output", help="the priorlab checkpoint to write (.pt or .pth)")
    g = sg.add_parser("generate", help="one PNG per seed", description="one PNG per seed, as NVIDIA's generate.py")
    g.add_argument("--checkpoint", required=True,
                   help="NVIDIA .pkl (PATH.pkl[#KEY]), rosinality .pt, priorlab .pt, or random:RES (RES = 4*2^k)")
    g.add_argument("--seeds", required=True,
                   help="comma-separated seeds or ranges, each 0..4294967295, e.g. 0,1,2 or 0-7")
    g.add_argument("--truncation", type=float, default=1.0,
                   help="truncation psi, -1..2 (1 = none, 0.7 = typical) (default: 1.0)")
    g.add_argument("--noise-mode", choices=("const", "random", "none"), default="const",
                   help="per-layer noise: const | random | none (default: const)")
    g.add_argument("--out", required=True, help="folder for seedNNNN.png (created when missing)")
    g.add_argument("--raw", action="store_true", help="also write raw.npy (N, 3, H, W) float32")
    g.add_argument("--device", default="auto", help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or mps "
                   "(default: auto)")
    sp.set_defaults(func=cmd_stylegan)
