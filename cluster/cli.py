"""The `priorlab` command line.

    priorlab dip --arch skip --task denoise --image astronaut --size 128 --out DIR
    priorlab baseline --method nlm --sigma 0.1 --out DIR
    priorlab sweep configs/dip_smoke.yaml [--store DIR] [--address ADDR] [--force] [--extend]
    priorlab runs --store DIR [--sweep NAME] [--format table|csv|parquet] [--out FILE]
    priorlab dashboard [--store DIR] [--port P] [--host 127.0.0.1]
    priorlab stylegan convert IN OUT | generate --checkpoint PATH --seeds 0,1,2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from importlib.util import find_spec
from pathlib import Path

from pydantic import BaseModel, ValidationError

DEFAULT_STORE = "results"


# ---- flags generated from a task's parameter model: every engine parameter has a flag ----

def _is_list(annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))


def _is_bool(annotation) -> bool:
    return annotation is bool or (typing.get_origin(annotation) is typing.Union and bool in typing.get_args(annotation))


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    group = parser.add_argument_group("task parameters")
    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        choices = [a for a in typing.get_args(field.annotation) if isinstance(a, str)]
        help_ = (field.description or "") + (f" (default: {default})" if default is not None else "")
        if choices:
            help_ += f" [{'|'.join(choices)}]"
        if _is_bool(field.annotation):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            metavar = "A,B,..." if _is_list(field.annotation) else name.upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_)


def params_from_args(model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    raw = {}
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if _is_list(field.annotation) and isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        raw[name] = value
    return model(**raw)


# ---- commands ----

def cmd_task(kind: str, args) -> int:
    from cluster.config import format_validation
    from cluster.local import run_local
    from tasks.registry import KINDS

    try:
        params = params_from_args(KINDS[kind].params, args)
    except ValidationError as e:
        print(f"priorlab {args.command}: invalid parameters\n{format_validation(e, as_flags=True)}", file=sys.stderr)
        return 2
    if not args.out and not args.store:
        args.out = str(Path("results") / "single" / kind)
    summary = run_local(kind, params, out=args.out, store_dir=args.store)
    keys = ("best_psnr", "best_step", "final_psnr", "input_psnr", "ssim_at_best", "wall_s", "iters_per_s", "status")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    if args.out:
        print(f"images, metrics.csv and summary.json in {Path(args.out).resolve()}")
    if args.store:
        print(f"stored as run {summary['run_id']} in {Path(args.store).resolve()}")
    return 0 if summary.get("status", "done") == "done" else 1


def cmd_sweep(args) -> int:
    from cluster.sweep import run_sweep

    return run_sweep(
        args.config, store_dir=args.store, address=args.address, force=args.force,
        max_concurrent=args.max_concurrent, num_cpus=args.num_cpus, extend=args.extend,
    )


def cmd_runs(args) -> int:
    from analysis.store import Store

    if not (Path(args.store) / "priorlab.db").exists():
        print(f"priorlab runs: no store at {args.store!r} (run a sweep first, or pass --store)", file=sys.stderr)
        return 2
    store = Store(args.store)
    runs = store.runs(sweep=args.sweep)
    if args.format == "table":
        text = runs.drop(columns=["error"], errors="ignore").to_string(index=False) if not runs.empty else "(no runs)"
        if args.out:
            Path(args.out).write_text(text + "\n")
        else:
            print(text)
        return 0
    out = args.out or f"runs.{args.format}"
    store.export_runs(out, format=args.format, sweep=args.sweep)
    print(f"{len(runs)} runs -> {out}")
    return 0


def cmd_dashboard(args) -> int:
    app = Path(find_spec("dashboard").origin).parent / "app.py"
    env = {**os.environ, "PRIORLAB_STORE": str(Path(args.store).resolve())}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true" if args.headless else "false",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]
    print(f"dashboard on http://{args.host}:{args.port} over {env['PRIORLAB_STORE']} (Ctrl-C stops)", flush=True)
    # Become Streamlit (no child process), so Ctrl-C and SIGTERM reach the server itself.
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def cmd_stylegan(args) -> int:
    import pickle

    try:
        return _stylegan(args)
    except (ValueError, OSError, pickle.UnpicklingError) as e:  # a bad spec, a missing file, a refused pickle
        print(f"priorlab stylegan {args.sg_command}: {e}", file=sys.stderr)
        return 2


def _stylegan(args) -> int:
    from tasks.stylegan import checkpoints

    if args.sg_command == "convert":
        checkpoints.convert(args.input, args.output)
        print(f"wrote {args.output}")
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    paths = checkpoints.generate(
        args.checkpoint, seeds=seeds, truncation=args.truncation, noise_mode=args.noise_mode,
        out_dir=args.out, raw=args.raw, device=args.device,
    )
    print(f"wrote {len(seeds)} images to {Path(args.out).resolve()}")
    return 0 if paths is not None else 1


def build_parser() -> argparse.ArgumentParser:
    from tasks.registry import KINDS

    p = argparse.ArgumentParser(prog="priorlab", description="Image-prior experiments at scale.")
    sub = p.add_subparsers(dest="command", required=True)

    for command, kind, help_ in (("dip", "dip", "run one Deep Image Prior trial here"),
                                 ("baseline", "dip-baseline", "run one classical baseline here")):
        sp = sub.add_parser(command, help=help_)
        add_model_flags(sp, KINDS[kind].params)
        sp.add_argument("--out", help="folder for summary.json, metrics.csv and PNG snapshots")
        sp.add_argument("--store", help="results store folder to record the run in")
        sp.set_defaults(func=lambda a, k=kind: cmd_task(k, a))

    sp = sub.add_parser("sweep", help="run a sweep config with Ray Tune")
    sp.add_argument("config")
    sp.add_argument("--store", default=DEFAULT_STORE, help=f"results store folder (default: {DEFAULT_STORE})")
    sp.add_argument("--address", help="join this Ray cluster (or 'auto'); default: RAY_ADDRESS, else start Ray here")
    sp.add_argument("--force", action="store_true", help="rerun runs the store already holds as done")
    sp.add_argument("--extend", action="store_true",
                    help="the store holds this sweep name with another config: add these runs to it")
    sp.add_argument("--max-concurrent", type=int, help="at most N trials at once")
    sp.add_argument("--num-cpus", type=int, help="CPUs for embedded Ray (default: all)")
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("runs", help="list the runs in a store")
    sp.add_argument("--store", default=DEFAULT_STORE)
    sp.add_argument("--sweep")
    sp.add_argument("--format", choices=("table", "csv", "parquet"), default="table")
    sp.add_argument("--out", help="write to this file instead of the terminal")
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("dashboard", help="open the Streamlit dashboard on a store")
    sp.add_argument("--store", default=DEFAULT_STORE)
    sp.add_argument("--port", type=int, default=8501)
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    sp.add_argument("--headless", action=argparse.BooleanOptionalAction, default=True,
                    help="do not try to open a browser window")
    sp.set_defaults(func=cmd_dashboard)

    sp = sub.add_parser("stylegan", help="StyleGAN2 checkpoints: convert, generate")
    sg = sp.add_subparsers(dest="sg_command", required=True)
    c = sg.add_parser("convert", help="write a checkpoint in priorlab's own format")
    c.add_argument("input")
    c.add_argument("output")
    g = sg.add_parser("generate", help="one PNG per seed")
    g.add_argument("--checkpoint", required=True, help="NVIDIA .pkl, rosinality .pt, priorlab file, or random:RES")
    g.add_argument("--seeds", required=True, help="comma-separated, e.g. 0,1,2")
    g.add_argument("--truncation", type=float, default=1.0)
    g.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    g.add_argument("--out", required=True)
    g.add_argument("--raw", action="store_true", help="also write raw.npy (N, 3, H, W) float32")
    g.add_argument("--device", default="auto")
    sp.set_defaults(func=cmd_stylegan)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
