"""The `priorlab` command line.

    priorlab dip --arch skip --task denoise --image astronaut --size 128 --out DIR
    priorlab baseline --method nlm --sigma 0.1 --out DIR
    priorlab sweep configs/dip_smoke.yaml [--store DIR|URL [--artifacts URL]] [--address ADDR] [--force] [--extend] [--only RUN_ID,...]
    priorlab runs --store DIR|URL [--sweep NAME] [--format table|csv|parquet] [--out FILE]
    priorlab dashboard [--store DIR|URL] [--port P] [--host 127.0.0.1]
    priorlab check --store DIR|URL [--artifacts URL] [--repair]
    priorlab store copy SRC DST [--artifacts URL] [--src-artifacts URL]

Wherever a store is named: `--store` is a folder or `postgresql://user@host:port/db`, default
`PRIORLAB_STORE`, else `results`; `--artifacts` (default `PRIORLAB_ARTIFACTS`) is where its files
live (`s3://bucket/prefix`, any fsspec URL, or a folder), required for a PostgreSQL store.
    priorlab stylegan convert IN OUT | generate --checkpoint PATH --seeds 0,1,2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
import typing
from importlib.util import find_spec
from pathlib import Path

from pydantic import BaseModel, ValidationError

from priorlab import vocab
from priorlab.cluster import cli_stylegan
from priorlab.cluster.cli_errors import CliError, check_out_folder, first_line
from priorlab.cluster.terminal import printable

DEFAULT_STORE = "results"
STORE_HELP = ("results store: a folder or postgresql://user@host:port/db (default: PRIORLAB_STORE, "
              f"else {DEFAULT_STORE}; credentials only from the environment: PGPASSWORD, ~/.pgpass)")
ARTIFACTS_HELP = ("where the store's images and files live: s3://bucket/prefix, any fsspec URL or a folder "
                  "(default: PRIORLAB_ARTIFACTS, else inside a folder store; required for a PostgreSQL store)")


def add_store_flags(sp, default: str | None = DEFAULT_STORE) -> None:
    """`--store` and `--artifacts`, the same on every command that names a store."""
    sp.add_argument("--store", default=os.environ.get("PRIORLAB_STORE") or default, help=STORE_HELP)
    sp.add_argument("--artifacts", default=os.environ.get("PRIORLAB_ARTIFACTS") or None, metavar="URL",
                    help=ARTIFACTS_HELP)


def is_store_url(value: str | None) -> bool:
    from priorlab.analysis.store import is_db_url

    return bool(value) and is_db_url(str(value))


def store_exists(store: str) -> bool:
    from priorlab.analysis.store import store_exists

    return store_exists(store)


# ---- flags generated from a task's parameter model: every engine parameter has a flag ----

def _union_args(annotation) -> tuple:
    """The members of `X | Y` / `Optional[X]` (either spelling), else (annotation,)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _is_list(annotation) -> bool:
    return any(typing.get_origin(a) in (list, tuple) for a in _union_args(annotation))


def _is_bool(annotation) -> bool:
    # `bool | None` is a types.UnionType, not a typing.Union: both must give --x/--no-x.
    return any(a is bool for a in _union_args(annotation))


def _choices(annotation) -> list[str]:
    """The values of a `Literal[...]`, also inside `| None` and `list[...]`."""
    out: list[str] = []
    for a in _union_args(annotation):
        if typing.get_origin(a) in (list, tuple):
            out += [c for inner in typing.get_args(a) for c in _choices(inner)]
        elif typing.get_origin(a) is typing.Literal:
            out += [str(c) for c in typing.get_args(a)]
    return out


def _bounds(field) -> str:
    """A number field's allowed range from its Field(ge=.., le=..) constraints, e.g. '16..4096'."""
    lo = hi = None
    for m in field.metadata:
        for attr, side in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(m, attr, None)
            if value is not None:
                if side.startswith(">"):
                    lo = (side, value)
                else:
                    hi = (side, value)
    if lo and hi and lo[0] == ">=" and hi[0] == "<=":
        return f"{lo[1]}..{hi[1]}"
    return ", ".join(f"{bound[0]} {bound[1]}" for bound in (lo, hi) if bound)


def field_help(field) -> str:
    """What a parameter means, what is allowed and its default: one `--help` line."""
    parts = [field.description or ""]
    choices = _choices(field.annotation)
    if choices and any(a is str for a in _union_args(field.annotation)):
        choices.append("package.module:function")  # Literal[...] | str: a built-in name or a plug-in
    allowed = " | ".join(choices) if choices else _bounds(field)
    if allowed:
        parts.append(f"(allowed: {allowed}{', comma-separated' if _is_list(field.annotation) else ''})")
    elif _is_list(field.annotation):
        parts.append("(comma-separated)")
    default = field.get_default(call_default_factory=True)
    if "default" in (field.description or ""):
        pass  # the description says it (a default that depends on other fields)
    elif default is not None and not _is_bool(field.annotation):
        parts.append(f"(default: {','.join(map(str, default)) if isinstance(default, list) else default})")
    elif _is_bool(field.annotation) and default is not None:
        parts.append(f"(default: {'on' if default else 'off'})")
    return " ".join(p for p in parts if p).replace("%", "%%")  # argparse %-formats help


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    group = parser.add_argument_group("task parameters")
    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        if _is_bool(field.annotation):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                               help=field_help(field))
        else:
            metavar = "A,B,..." if _is_list(field.annotation) else name.upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=field_help(field))


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
    from priorlab.cluster.errors import flag_line
    from priorlab.cluster.local import LocalRunError, run_local
    from priorlab.tasks.registry import KINDS

    try:
        params = params_from_args(KINDS[kind].params, args)
    except ValidationError as e:
        print(f"priorlab {args.command}: {flag_line(e)}", file=sys.stderr)
        return 2
    check_out_folder("--out", args.out)
    if not is_store_url(args.store):
        check_out_folder("--store", args.store)
    if not args.out and not args.store:
        args.out = str(Path("results") / "single" / kind)
    from priorlab.cluster.endline import blind_warning, end_line

    dumped = params.model_dump(mode="json")
    if blind_warning(dumped):
        print(f"priorlab {args.command}: warning: {blind_warning(dumped)}", file=sys.stderr)
    try:
        summary = run_local(kind, params, out=args.out, store_dir=args.store, artifacts=args.artifacts)
    except LocalRunError as e:  # found before the run started: nothing was recorded
        raise CliError(str(e)) from None
    keys = (vocab.REFERENCE, "best_psnr", "best_step", "final_psnr", "input_psnr", "ssim_at_best", "sigma_est",
            "stopped_by", "iterations_done", *vocab.RESOURCE_KEYS, "status")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    if kind == "dip":
        print(end_line(summary, dumped))
    if args.out:
        restored = Path(args.out).resolve() / "restored.png"
        print(f"restored image: {restored}" if restored.exists() else "")
        print(f"images, metrics.csv and summary.json in {Path(args.out).resolve()}")
    if args.store:
        print(f"stored as run {summary['run_id']} in "
              f"{args.store if is_store_url(args.store) else Path(args.store).resolve()}")
    return 0 if summary.get("status", "done") == "done" else 1


def cmd_sweep(args) -> int:
    from priorlab.cluster.work import parse_only

    only = parse_only(args.only)
    if args.plan:  # exactly what the sweep would run (cluster/work.py decides for both); run nothing
        from priorlab.cluster.plan import plan

        return plan(args.config, store_dir=args.store, address=args.address, num_cpus=args.num_cpus,
                    max_concurrent=args.max_concurrent, force=args.force, extend=args.extend, only=only,
                    artifacts=args.artifacts)
    from priorlab.cluster.sweep import run_sweep

    return run_sweep(
        args.config, store_dir=args.store, address=args.address, force=args.force,
        max_concurrent=args.max_concurrent, num_cpus=args.num_cpus, extend=args.extend, artifacts=args.artifacts,
        only=only,
    )


def cmd_runs(args) -> int:
    """Like every Unix tool: to stdout unless --out names a file (`--out -` is stdout too)."""
    import tempfile

    from priorlab.analysis.store import Store

    if not store_exists(args.store):
        raise CliError(f"no store at {args.store!r} (run a sweep first, or pass --store)")
    to_stdout = args.out in (None, "-")
    if args.format == "parquet" and to_stdout and sys.stdout.isatty():
        raise CliError("parquet is binary and stdout is a terminal: give --out FILE, or pipe the output into a program")
    if not to_stdout:
        check_out_folder("--out", str(Path(args.out).parent))
        if Path(args.out).is_dir():
            raise CliError(f"--out {args.out!r} is a folder; give a file name")
    from priorlab.cluster.tables import export_frame, runs_table

    store = Store(args.store, readonly=True, artifacts=args.artifacts)  # a reader: works on a store it cannot write
    if args.sweep is not None:
        names = list(store.sweeps()["name"])
        if args.sweep not in names:
            raise CliError(f"--sweep {args.sweep!r}: no such sweep in {args.store} (allowed: {', '.join(names) or 'none yet'})")
    if args.format == "table":
        text = printable(runs_table(store.runs(sweep=args.sweep)), keep_lines=True) + "\n"
        if to_stdout:
            sys.stdout.write(text)
        else:
            Path(args.out).write_text(text)
    elif args.format == "csv":
        text = export_frame(store.runs(sweep=args.sweep)).to_csv(index=False)
        if to_stdout:
            sys.stdout.write(printable(text, keep_lines=True) if sys.stdout.isatty() else text)
        else:
            Path(args.out).write_text(text)
            print(f"wrote {args.out}", file=sys.stderr)
    elif not to_stdout:
        store.export_runs(args.out, format=args.format, sweep=args.sweep)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory() as tmp:  # export_runs makes mixed-type columns parquet-safe
            data = store.export_runs(Path(tmp) / "runs.parquet", format="parquet", sweep=args.sweep).read_bytes()
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


_ADDR_IN_USE = (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows


def _bind_error(host: str, port: int) -> OSError | None:
    """The error binding host:port raises, or None when it is free (raises socket.gaierror)."""
    import socket

    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as s:
        # As Streamlit's server does: a port left in TIME_WAIT by a stopped server is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            return e
    return None


def port_in_use(host: str, port: int) -> str | None:
    """Why Streamlit could not listen on host:port (a one-line reason), or None when it can."""
    import socket

    try:
        err = _bind_error(host, port)
    except socket.gaierror as e:
        return f"--host {host!r} is not an address of this machine ({e.strerror})"
    if err is None:
        return None
    if err.errno not in _ADDR_IN_USE:
        return f"cannot listen on {host}:{port}: {err.strerror} (try another --port or --host)"
    # Suggest a port that is free now, not just port + 1 (a second dashboard often holds that one).
    free = next((p for p in range(port + 1, min(port + 100, 65536)) if _bind_error(host, p) is None), None)
    hint = f"e.g. --port {free} (free now)" if free else f"none of {port + 1}..{port + 99} is free either"
    return f"port {port} on {host} is already in use (another dashboard?); pick another with --port, {hint}"


def cmd_check(args) -> int:
    """Verify a store's database and artifact files; exit 1 when anything is wrong."""
    from priorlab.analysis.check import check_store

    report = check_store(args.store, repair=args.repair, artifacts=args.artifacts)
    print("\n".join(report.lines()))
    return 0 if report.clean else 1


def cmd_dashboard(args) -> int:
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not allowed (allowed: 1..65535)")
    busy = port_in_use(args.host, args.port)
    if busy:
        raise CliError(busy)
    app = Path(find_spec("priorlab.dashboard").origin).parent / "app.py"
    env = {**os.environ, "PRIORLAB_STORE": args.store if is_store_url(args.store) else str(Path(args.store).resolve())}
    if args.artifacts:
        env["PRIORLAB_ARTIFACTS"] = args.artifacts
    cmd = [
        sys.executable, "-m", "priorlab.dashboard.serve", "run", str(app),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true" if args.headless else "false",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]
    print(f"dashboard on http://{args.host}:{args.port} over {env['PRIORLAB_STORE']} (Ctrl-C stops)", flush=True)
    # Become the server (no child process), so Ctrl-C and SIGTERM reach it itself; serve.py
    # imports what the pages need before handing over to `streamlit run`.
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def cmd_store(args) -> int:
    """`priorlab store copy SRC DST`: exit 0 when DST checks clean afterwards, 1 when not."""
    from priorlab.analysis.store.copy import copy_store

    report = copy_store(args.src, args.dst, src_artifacts=args.src_artifacts, artifacts=args.artifacts,
                        echo=lambda line: print(line, flush=True))
    print("\n".join(report.lines()))
    return 0 if report.clean else 1


def build_parser(task_flags: bool = True) -> argparse.ArgumentParser:
    """The whole CLI. `task_flags=False` leaves out the flags generated from the task models
    (they import torch), so `priorlab runs` or `priorlab dashboard` start in a fraction of the time."""
    p = argparse.ArgumentParser(prog="priorlab", description="Image-prior experiments at scale.")
    sub = p.add_subparsers(dest="command", required=True)

    for command, kind, help_ in (("dip", "dip", "run one Deep Image Prior trial here"),
                                 ("baseline", "dip-baseline", "run one classical baseline here")):
        sp = sub.add_parser(command, help=help_, description=help_)
        if task_flags:
            from priorlab.tasks.registry import KINDS

            add_model_flags(sp, KINDS[kind].params)
        sp.add_argument("--out", help="folder for summary.json, metrics.csv and PNG snapshots (created when "
                        "missing; default: results/single/KIND unless --store is given)")
        sp.add_argument("--store", default=os.environ.get("PRIORLAB_STORE") or None,
                        help="results store to record the run in: a folder (created when missing) or "
                        "postgresql://… (default: PRIORLAB_STORE, else none)")
        sp.add_argument("--artifacts", default=os.environ.get("PRIORLAB_ARTIFACTS") or None, metavar="URL",
                        help=ARTIFACTS_HELP)
        sp.set_defaults(func=lambda a, k=kind: cmd_task(k, a))

    sp = sub.add_parser("sweep", help="run a sweep config with Ray Tune",
                        description="run a sweep config with Ray Tune")
    sp.add_argument("config", help="a sweep YAML file, e.g. configs/dip_smoke.yaml")
    add_store_flags(sp)
    sp.add_argument("--address", help="join this Ray cluster (or 'auto'); default: RAY_ADDRESS, else start Ray here")
    sp.add_argument("--force", action="store_true", help="rerun runs the store already holds as done")
    sp.add_argument("--only", metavar="RUN_ID,...",
                    help="rerun just these runs of the sweep (run ids or unique prefixes, comma-separated), "
                    "whatever the store holds, e.g. the runs `priorlab check` lists")
    sp.add_argument("--extend", action="store_true",
                    help="the store holds this sweep name with another config: add these runs to it")
    sp.add_argument("--max-concurrent", type=int, metavar="N",
                    help="at most N trials at once (default: as many as fit)")
    sp.add_argument("--num-cpus", type=int, metavar="N", help="CPUs for embedded Ray (default: all of this machine)")
    sp.add_argument("--plan", action="store_true",
                    help="print the trials, how they pack, what each asks for and how many run at once; run nothing")
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("runs", help="list the runs in a store", description="list the runs in a store")
    add_store_flags(sp)
    sp.add_argument("--sweep", help="only this sweep's runs (default: every sweep)")
    sp.add_argument("--format", choices=("table", "csv", "parquet"), default="table",
                    help="table (short, for a terminal), csv or parquet (every column) (default: table)")
    sp.add_argument("--out", metavar="FILE", help="write to this file; default or '-': standard output "
                    "(parquet only into a pipe or a file)")
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("check", help="verify a store: database integrity, artifact hashes, orphans")
    add_store_flags(sp)
    sp.add_argument("--repair", action="store_true",
                    help="migrate an older database and remove orphan files (never touches results)")
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("dashboard", help="open the Streamlit dashboard on a store",
                        description="open the Streamlit dashboard on a store")
    add_store_flags(sp)
    sp.add_argument("--port", type=int, default=8501, help="TCP port, 1..65535 (default: 8501)")
    sp.add_argument("--host", default="127.0.0.1",
                    help="bind address (default: 127.0.0.1, this machine only; 0.0.0.0 = every interface)")
    sp.add_argument("--headless", action=argparse.BooleanOptionalAction, default=True,
                    help="do not try to open a browser window (default: on)")
    sp.set_defaults(func=cmd_dashboard)

    sp = sub.add_parser("store", help="move a store between backends", description="move a store between backends")
    st = sp.add_subparsers(dest="store_command", required=True)
    c = st.add_parser("copy", help="copy every sweep, run, row and file of SRC into DST (idempotent, resumable)",
                      description="copy every sweep, run, row and file of SRC into DST (a folder or "
                      "postgresql://…), skipping what DST holds already; checked with `priorlab check` at the end")
    c.add_argument("src", help="the store to copy: a folder or postgresql://…")
    c.add_argument("dst", help="the store to copy into (created or migrated): a folder or postgresql://…")
    c.add_argument("--artifacts", metavar="URL", help="where DST's files live (required when DST is a database)")
    c.add_argument("--src-artifacts", metavar="URL", help="where SRC's files live (required when SRC is a database)")
    sp.set_defaults(func=cmd_store)

    cli_stylegan.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from priorlab.analysis.schema import StoreError  # (no pandas import for commands that need none)

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(task_flags=bool(argv) and argv[0] in ("dip", "baseline")).parse_args(argv)
    name = " ".join(filter(None, ("priorlab", args.command, getattr(args, "sg_command", None),
                                  getattr(args, "store_command", None))))
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        # `priorlab runs | head`: the reader left. Point stdout at devnull so the interpreter's
        # final flush does not raise again, and end quietly as a SIGPIPE'd tool does.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout without a file descriptor (captured in-process)
            pass
        return 141
    except CliError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C is a choice, not a crash (a stored run is marked interrupted)
        print(f"\n{name}: interrupted", file=sys.stderr)
        return 130
    except StoreError as e:  # a damaged, unreadable or too-new store: one line, no traceback
        print(f"{name}: {first_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
