"""What each hostile checkpoint of issue 16 (items 6-9) costs `priorlab stylegan generate` (run by hand).

    .venv/bin/python tests/benchmarks/bench_checkpoint_attacks.py [--root PRIORLAB_CHECKOUT] \
        [--cap-gb 4] [--timeout 120] [--only NAME ...]

Each file (built by `tests/hostile_checkpoints.py`) goes to `priorlab stylegan generate --seeds 0`
in a fresh process that imports priorlab from `--root` (default: this checkout; point it at an
export of an older commit for the "before" column). The child's address space is capped at
`--cap-gb` above what it has after importing torch, and it is killed after `--timeout` seconds,
so a runaway load stops there instead of taking the machine. Printed per attack: file size,
exit code, wall and CPU seconds, peak RSS (the child's ru_maxrss) and stderr's line count and last line.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile_checkpoints as hc  # noqa: E402

CHILD = r"""
import resource, sys
cap = int(sys.argv[1])
import torch  # the cap counts from here: torch's own mappings are not the load's
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + cap, resource.RLIM_INFINITY))
from priorlab.cluster import cli
sys.exit(cli.main(["stylegan", "generate", "--checkpoint", sys.argv[2], "--seeds", "0", "--out", sys.argv[3],
                   "--device", "cpu"]))
"""


def run(root: Path, path: Path, cap: int, timeout: float, work: Path) -> dict:
    """One child; its own rusage comes from wait4, so each attack's peak RSS is its own."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cap), str(path), str(work / "out")], env=env,
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    killed = []
    timer = threading.Timer(timeout, lambda: (killed.append(1), os.killpg(proc.pid, signal.SIGKILL)))
    timer.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in err.splitlines() if line.strip()]
    return dict(code="timeout" if killed else proc.returncode, wall=time.monotonic() - t0,
                cpu=usage.ru_utime + usage.ru_stime, peak_mb=usage.ru_maxrss / 1024, lines=len(lines),
                last=(lines[-1] if lines else "")[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the priorlab checkout the children import")
    parser.add_argument("--cap-gb", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--files", type=Path, default=None, help="folder to build the files in (kept)")
    args = parser.parse_args()
    files = args.files or Path(tempfile.mkdtemp(prefix="attacks-"))
    files.mkdir(parents=True, exist_ok=True)
    names = args.only or list(hc.ATTACKS)
    print(f"root {args.root}, cap {args.cap_gb} GB over torch's import, timeout {args.timeout:.0f} s", flush=True)
    print(f"{'attack':22} {'size':>10} {'exit':>7} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} lines  last line")
    for name in ["startup", *names]:  # startup: a missing file, so the child's imports alone (torch: ~0.9 GB)
        if name == "startup":
            path = files / "missing.pkl"
        else:
            build, suffix = hc.ATTACKS[name]
            path = files / f"{name}{suffix}"
            if not path.exists():
                build(path)
        with tempfile.TemporaryDirectory() as work:
            r = run(args.root, path, int(args.cap_gb * (1 << 30)), args.timeout, Path(work))
        size = path.stat().st_size if path.exists() else 0
        print(f"{name:22} {size:>10} {r['code']!s:>7} {r['wall']:>7.1f} {r['cpu']:>7.1f} "
              f"{r['peak_mb']:>8.0f} {r['lines']:>5}  {r['last']}", flush=True)


if __name__ == "__main__":
    main()
