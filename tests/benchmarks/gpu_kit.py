"""The GPU proof kit: one command on a machine with one NVIDIA GPU, one report file.

    make gpu-check                       # = python tests/benchmarks/gpu_kit.py --out gpu-report.md
    python tests/benchmarks/gpu_kit.py --device cpu --tiny --out /tmp/r.md   # what CI runs

It runs, within about 8 minutes on one GPU:
1. `pytest -m gpu`: every CUDA path (device placement, amp bf16, channels_last, packed fits under
   vmap, compile/CUDA graphs, StyleGAN sampling on CUDA, a `gpu: 0.25` sweep on embedded Ray
   whose 4 trials share the card); on a machine without CUDA they all skip;
2. the benchmarks of `gpu_benches.py`: priorlab's DIP loop vs a plain PyTorch loop (skip net,
   256 and 512 px, amp and channels_last on/off, compile), the packed speed-up for K = 1, 4,
   16, 64, StyleGAN2 sampling at batch 1, 8, 32 — each with its peak GPU memory;
and writes `gpu-report.md`: the machine, the test results, one table of every number, and the
goals (DIP loop >= 0.95 x plain; packed K=16 >= 4x sequential; every gpu test passes) met or not.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

GOAL_DIP = 0.95  # priorlab's loop / the plain loop
GOAL_PACK = 4.0  # packed K=16 member-it/s / sequential


def run_gpu_tests(paths: list[str], timeout: int) -> dict:
    """`pytest -m gpu` in a subprocess: counts and the failing tests' names."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "gpu.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *paths]
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        except subprocess.TimeoutExpired:
            return {"error": f"pytest -m gpu did not finish in {timeout} s", "wall_s": time.perf_counter() - t}
        out = {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "wall_s": time.perf_counter() - t,
               "summary": tail[0]}
        if not xml.exists():
            return {**out, "error": f"pytest wrote no results (exit {proc.returncode}): {tail[0]}"}
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                out["failed"] += 1
                node = case.find("failure") if case.find("failure") is not None else case.find("error")
                out["failures"].append(f"{name}: {(node.get('message') or '').splitlines()[0][:200] if node.get('message') else ''}")
            elif case.find("skipped") is not None:
                out["skipped"] += 1
            else:
                out["passed"] += 1
        return out


def machine(device) -> list[str]:
    import torch

    lines = [f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
             f"- host: {platform.node()}, Python {platform.python_version()}, torch {torch.__version__}"]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        lines.append(f"- GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()}")
    else:
        lines.append(f"- device: CPU ({os.cpu_count()} cores) — no GPU here: the numbers only prove the kit runs")
    return lines


def _num(x, digits: int = 1) -> str:
    return "-" if x is None else (f"{x:,.{digits}f}" if isinstance(x, float) else str(x))


def table(rows: list[dict]) -> list[str]:
    out = ["| bench | case | priorlab | compared with | ratio | peak GPU memory |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = f"{_num(r['ref'])} {r['unit']}" if r["ref"] else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        peak = f"{r['peak_mb']:,.0f} MB" if r["peak_mb"] is not None else "-"
        out.append(f"| {r['bench']} | {r['case']} | {_num(r['value'])} {r['unit']} | {ref} | {ratio} | {peak} |")
    return out


def goals(rows: list[dict], tests: dict | None) -> list[str]:
    dip = [r for r in rows if r["bench"].startswith("DIP") and "compile" not in r["case"] and r["ratio"]]
    k16 = [r for r in rows if r["bench"].startswith("packed") and r["case"].startswith("K=16 ")]
    out = []
    if dip:
        worst = min(dip, key=lambda r: r["ratio"])
        ok = worst["ratio"] >= GOAL_DIP
        out.append(f"- {'MET' if ok else 'NOT MET'}: priorlab's DIP loop >= {GOAL_DIP} x the plain loop "
                   f"(worst case {worst['ratio']:.2f}x, {worst['case']})")
    if k16:
        ok = k16[0]["ratio"] >= GOAL_PACK
        out.append(f"- {'MET' if ok else 'NOT MET'}: packed K=16 >= {GOAL_PACK:g}x sequential ({k16[0]['ratio']:.2f}x)")
    else:
        out.append("- not measured: packed K=16 (tiny mode)")
    if tests is not None:
        ok = "error" not in tests and tests["failed"] == 0 and tests["passed"] > 0
        out.append(f"- {'MET' if ok else 'NOT MET'}: every `pytest -m gpu` test passes "
                   f"({tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, {tests.get('skipped', 0)} skipped)")
    return out


def report(device, rows: list[dict], tests: dict | None, errors: list[str], wall_s: float, tiny: bool) -> str:
    lines = ["# priorlab GPU report", "", *machine(device), f"- kit wall time: {wall_s:.0f} s"
             + (" (tiny mode: sizes that only prove the kit runs)" if tiny else ""), ""]
    lines += ["## pytest -m gpu", ""]
    if tests is None:
        lines.append("not run (--skip-tests)")
    elif "error" in tests:
        lines.append(f"ERROR: {tests['error']}")
    else:
        lines.append(f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped "
                     f"in {tests['wall_s']:.0f} s ({tests['summary']})")
        lines += [f"- FAILED {f}" for f in tests["failures"]]
    lines += ["", "## Numbers", "", *table(rows), "", "## Goals", "", *goals(rows, tests)]
    if errors:
        lines += ["", "## Benchmarks that failed", "", *[f"- {e}" for e in errors]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu-report.md", help="the report file (default: gpu-report.md)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny: what CI runs)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: proves the kit runs, measures nothing")
    ap.add_argument("--skip-tests", action="store_true", help="leave out pytest -m gpu")
    ap.add_argument("--tests", nargs="*", default=["tests"], help="paths given to pytest -m gpu (default: tests)")
    ap.add_argument("--benches", nargs="*", default=None, help="which of dip, packed, stylegan (default: all)")
    ap.add_argument("--test-timeout", type=int, default=300, help="seconds for pytest -m gpu (default: 300)")
    args = ap.parse_args(argv)

    import torch

    from gpu_benches import BENCHES

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; run it on a GPU machine, or --device cpu --tiny to test the kit",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    tests = None if args.skip_tests else run_gpu_tests(args.tests, args.test_timeout)
    rows: list[dict] = []
    errors: list[str] = []
    for name in args.benches or list(BENCHES):
        print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
        try:
            rows += BENCHES[name](device, tiny=args.tiny)
        except Exception as e:  # one failing bench must not hide the others' numbers
            errors.append(f"{name}: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
            traceback.print_exc()
    text = report(device, rows, tests, errors, time.perf_counter() - t0, args.tiny)
    Path(args.out).write_text(text)
    print(text)
    print(f"gpu-check: wrote {args.out}", file=sys.stderr)
    return 1 if errors or (tests and (tests.get("failed") or "error" in tests)) else 0


if __name__ == "__main__":
    sys.exit(main())
