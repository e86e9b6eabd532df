"""How close the early-stopping detectors stop to the oracle, what they cost, what `stop` saves.

Run by hand (not collected by pytest):

    python tests/benchmarks/bench_stopping.py                      # the stopping config, in-process
    python tests/benchmarks/bench_stopping.py --quick              # skip net, 2 images: minutes
    python tests/benchmarks/bench_stopping.py --images rocket,brick --jobs 2   # other images
    python tests/benchmarks/bench_stopping.py --store results --sweep dip-stopping   # a stored sweep

Prints, per detector d (all runs, and the skip net alone):
1. stop_gap_d = best_psnr - psnr where d stops (dB): median, 90th percentile, the share of
   runs within 0.5 dB of the oracle; mean stop step / iterations;
2. what `stop: d` would run: mean stop_decided_d / iterations (the step where d's decision is
   final; a run where d never decides runs its whole budget), checked against real `stop`
   runs on a few configurations (same stop step and psnr, iterations_done as predicted; not
   the same gap: a stopped run's own best_psnr only covers the steps it ran);
3. the detectors' overhead: CPU time of a run with both detectors vs none, measured side by
   side (alternating, best of N). Goal: <= 1.05;
4. ASHA against the full grid on a small search (tests/benchmarks/bench_asha.py, run last;
   `--no-asha` skips it): best PSNR found, trial-iterations spent, their ratio.
Goals (issue 10): priorlab's best detector's median gap <= 0.5 dB on the skip net and below
wmv's; with `stop` mean iterations <= 60% of the budget at that gap.

Measured (2026-11-24, skip net, 32 runs: 4 images x 4 noise types x 2 strengths, 2 shared cores):
    dp   median 0.23 dB, p90 0.44, 91% within 0.5 dB, stop: dp runs 15% of the budget
    wmv  median 0.47 dB, p90 1.49, 53% within 0.5 dB, stop: wmv runs 30% of the budget
    overhead (wmv + dp vs none): 0.995; 4/4 stop runs ended where predicted
"""

from __future__ import annotations

import argparse
import subprocess
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "configs" / "dip_stopping.yaml"


def _fit(params: dict) -> dict:
    import torch

    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.sink import NullSink

    torch.set_num_threads(1)  # one core per run: runs in parallel, steadier on a shared machine
    summary = run(DipParams(**params), NullSink())
    return {**params, **summary}


def trials(args) -> list[dict]:
    from priorlab.cluster.config import load
    from priorlab.cluster.expand import expand

    config, _ = load(args.config)
    runs = [t["params"] for t in expand(config)]
    if args.quick:
        args.arch = args.arch or "skip"
        args.images = args.images or "coffee,camera"
    if args.arch:
        runs = [p for p in runs if p["arch"] in args.arch.split(",")]
    if args.images:
        images = args.images.split(",")
        seen, out = set(), []
        for p in runs:  # the config's grid, its images replaced
            for img in images:
                q = {**p, "image": img}
                key = tuple(sorted((k, str(v)) for k, v in q.items()))
                if key not in seen:
                    seen.add(key)
                    out.append(q)
        runs = out
    return runs


def run_all(runs: list[dict], jobs: int) -> list[dict]:
    out = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, r in enumerate(pool.map(_fit, runs), 1):
            out.append(r)
            print(f"\r{i}/{len(runs)} runs, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def from_store(path: str, sweep: str | None) -> list[dict]:
    from priorlab.analysis.store import Store

    df = Store(path, create=False).runs(sweep=sweep, kind="dip", status="done")
    return df.to_dict("records")


def detector_names(rows: list[dict]) -> list[str]:
    return sorted({k[len("stop_gap_"):] for r in rows for k in r if k.startswith("stop_gap_")})


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def table(rows: list[dict], title: str) -> None:
    rows = [r for r in rows if r.get("best_psnr") is not None]
    print(f"\n{title}: {len(rows)} runs")
    print(f"{'detector':10} {'median gap':>10} {'p90 gap':>8} {'<=0.5 dB':>8} {'stop/iters':>10} "
          f"{'stop: iters run':>15}")
    for d in detector_names(rows):
        have = [r for r in rows if r.get(f"stop_gap_{d}") is not None and r[f"stop_gap_{d}"] == r[f"stop_gap_{d}"]]
        if not have:
            continue
        gaps = [r[f"stop_gap_{d}"] for r in have]
        where = statistics.mean(r[f"stop_step_{d}"] / r["iterations"] for r in have)
        decided = [r.get(f"stop_decided_{d}") for r in have]
        spent = statistics.mean(
            (s if s == s and s is not None else r["iterations"]) / r["iterations"] for s, r in zip(decided, have)
        )
        print(f"{d:10} {statistics.median(gaps):10.2f} {quantile(gaps, 0.9):8.2f} "
              f"{sum(g <= 0.5 for g in gaps) / len(gaps):8.0%} {where:10.2f} {spent:15.2f}")
    oracle = statistics.mean(r["best_step"] / r["iterations"] for r in rows)
    print(f"{'(oracle)':10} {0:10.2f} {0:8.2f} {1:8.0%} {oracle:10.2f}")


def check_stop(rows: list[dict], n: int, jobs: int) -> None:
    """Real `stop` runs end where the full runs said the detector decides."""
    from priorlab.tasks.dip.detectors import DETECTORS

    picked = [r for r in rows if r.get("arch") == "skip"][:n] or rows[:n]
    params_keys = [k for k in _param_names()]
    jobs_list, expect = [], []
    for r in picked:
        for d in DETECTORS:
            if f"stop_gap_{d}" in r:
                jobs_list.append({**{k: r[k] for k in params_keys if k in r}, "stop": d})
                expect.append((d, r))
    if not jobs_list:
        return
    got = run_all(jobs_list, jobs)
    ok = 0
    for (d, full), s in zip(expect, got):
        want = full.get(f"stop_decided_{d}") or full["iterations"]
        # (not the gap: a stopped run's best_psnr only covers the steps it ran)
        same = (s["iterations_done"] == want and s[f"stop_step_{d}"] == full[f"stop_step_{d}"]
                and s[f"stop_psnr_{d}"] == full[f"stop_psnr_{d}"]
                and s["stopped_by"] == (d if full.get(f"stop_decided_{d}") else None))
        ok += same
        if not same:
            print(f"  MISMATCH {d} {full['image']} {full['noise']} {full['sigma']}: ran {s['iterations_done']} "
                  f"(expected {want}), stop psnr {s[f'stop_psnr_{d}']:.2f} vs {full[f'stop_psnr_{d}']:.2f}")
    print(f"\nstop runs: {ok}/{len(got)} ended where the full runs predicted, with the same stop step and psnr")


def _param_names() -> list[str]:
    from priorlab.tasks.dip import DipParams

    return [k for k in DipParams.model_fields if k != "stop"]


def overhead(reps: int) -> None:
    """CPU seconds of the same run with both detectors and with none, alternating."""
    import torch

    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.dip.detectors import DETECTORS
    from priorlab.tasks.sink import NullSink

    torch.set_num_threads(1)
    base = dict(image="coffee", size=64, arch="skip", depth=3, width=16, iterations=200, log_every=10, sigma=0.1)
    both = ",".join(list(DETECTORS)[:2])
    times: dict[str, list[float]] = {both: [], "none": []}
    run(DipParams(**{**base, "iterations": 20}), NullSink())  # warm up
    for _ in range(reps):
        for dets in times:
            t = time.process_time()
            run(DipParams(**base, detectors=dets), NullSink())
            times[dets].append(time.process_time() - t)
    a, b = min(times[both]), min(times["none"])
    print(f"\noverhead: skip net 64 px, 200 steps, log every 10, CPU time best of {reps}: "
          f"detectors {both} {a:.2f} s, none {b:.2f} s, ratio {a / b:.3f} (goal <= 1.05)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--quick", action="store_true", help="skip net on coffee and camera only")
    ap.add_argument("--arch", help="only these architectures, e.g. skip")
    ap.add_argument("--images", help="replace the config's images, e.g. rocket,brick")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    ap.add_argument("--store", help="read a stored sweep instead of running")
    ap.add_argument("--sweep", help="the sweep's name in --store")
    ap.add_argument("--check-stop", type=int, default=3, help="configurations rerun with stop: d (0: none)")
    ap.add_argument("--overhead-reps", type=int, default=3, help="0: skip the overhead measurement")
    ap.add_argument("--save", help="write the runs' params and summaries to this JSON file")
    ap.add_argument("--load", help="read runs saved with --save instead of running them")
    ap.add_argument("--no-asha", action="store_true", help="skip the ASHA vs full-grid comparison")
    args = ap.parse_args()

    if args.load:
        rows = json.loads(Path(args.load).read_text())
    elif args.store:
        rows = from_store(args.store, args.sweep)
    else:
        runs = trials(args)
        print(f"running {len(runs)} runs in-process ({args.jobs} at a time)", file=sys.stderr)
        rows = run_all(runs, args.jobs)
    if args.save:
        Path(args.save).write_text(json.dumps(rows))
    table(rows, "all architectures")
    table([r for r in rows if r.get("arch") == "skip"], "skip net")
    for arch in sorted({r.get("arch") for r in rows} - {"skip", None}):
        table([r for r in rows if r.get("arch") == arch], arch)
    if args.check_stop and not (args.store or args.load):
        check_stop(rows, args.check_stop, args.jobs)
    if args.overhead_reps:
        overhead(args.overhead_reps)
    if not args.no_asha:  # its own process: it starts an embedded Ray of its own
        subprocess.run([sys.executable, str(Path(__file__).with_name("bench_asha.py"))], check=True)


if __name__ == "__main__":
    main()
