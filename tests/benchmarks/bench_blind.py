"""Blind early stopping, measured like the early-stopping papers' tables: every detector, with
the noise level known and estimated (`sigma: auto`), on clean/noisy pairs.

Run by hand (not collected by pytest):

    python tests/benchmarks/bench_blind.py                   # pairs it makes from bundled images
    python tests/benchmarks/bench_blind.py --quick           # 2 images, 2 strengths: a first look
    python tests/benchmarks/bench_blind.py --pairs DIR --noise gaussian --sigma 0.098
                                           # any public set laid out as DIR/noisy/, DIR/clean/

With no --pairs it writes its own pairs (the four noise types x STRENGTHS, from bundled images
at --size px, as 8-bit PNGs like any downloaded set) into a temporary folder of pairs - the
layout `corrupted: DIR` takes (tasks.images.expand_pairs) - so it needs no download.

Each pair is fitted once, as `priorlab dip --corrupted noisy --image clean` would (the clean
file only scores), with the noise level known; the outputs of every logging step are kept.
The detectors never touch the fit, so the same fit with `sigma: auto` differs only in the
level dp assumes: dp is replayed on the kept outputs with the run's own estimate `sigma_est`
(exactly what a live `auto` run computes: dp only looks at logging steps). rw and wmv need no
noise level, so their known and auto rows are one and the same.

Prints, per noise type and over all: for each detector x {known, auto}: median and p90 gap to
the oracle (dB), the share within 0.5 dB and beyond 1 dB, mean PSNR at the stop vs the
oracle's peak; the sigma estimate's relative error; then the sigma estimate alone at more
strengths (no fit needed), the goal's check for Gaussian sigma >= 0.05.
Goals (issue 14): with sigma estimated, the best detector's median gap <= 0.5 dB (aim 0.3) and
p90 <= 1.5 dB over the four noise types, no worse than wmv; sigma within 15% for Gaussian
sigma >= 0.05.

Measured (2026-12-03, 2 shared cores, load ~25):
    python tests/benchmarks/bench_blind.py --images coffee,camera --iterations 300 --jobs 2
    (skip net depth 3 width 16, 64 px, 4 noise types x 3 strengths x 2 images = 24 fits, ~35 min)
    all noise types, gap to the oracle in dB:   median   p90   <=0.5 dB   >1 dB
        rw   (no noise level needed)            0.24    0.83     79%       4%
        dp   sigma known                        0.17    0.46     92%       0%
        dp   sigma auto                         0.26    0.94     62%       4%
        wmv  (no noise level needed)            0.38    1.51     67%      25%
    per type, rw / dp auto median: gaussian 0.27 / 0.40, poisson 0.21 / 0.22, impulse 0.04 /
    0.35, speckle 0.62 / 0.33. Goals with sigma estimated: best detector (rw) median 0.24 <= 0.5
    (aim 0.3: met), p90 0.83 <= 1.5, better than wmv (0.38 / 1.51): met.
    sigma estimate over the fits: median |error| 2.9%, worst -15.8% (poisson 0.25).
    sigma alone, Gaussian, 6 bundled images at 64 px: max |error| 14.1% at 0.05, 5.6% at 0.1,
    8.0% at 0.15, 15.5% at 0.25 (astronaut; clipping). Since 2026-12-04 the Gaussian estimate
    models the clipping (noise_level._censored): max |error| 11.5% at 0.05, 1.8% at 0.1, 5.4%
    at 0.15, 12.1% at 0.25 (sigma_table, `python -c "import bench_blind as b;
    b.sigma_table(b.SIGMA_IMAGES, 64)"` from tests/benchmarks): the 15% goal is met at every
    strength. Speckle at 0.05 over-estimates by up to 31% (texture).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NOISES = ("gaussian", "poisson", "impulse", "speckle")
STRENGTHS = (0.1, 0.15, 0.25)
IMAGES = ("coffee", "camera", "chelsea", "astronaut")
SIGMA_STRENGTHS = (0.05, 0.1, 0.15, 0.25)
SIGMA_IMAGES = ("astronaut", "coffee", "chelsea", "camera", "cat", "rocket")
WITHIN, BEYOND = 0.5, 1.0


def make_pairs(root: Path, images, noises, strengths, size: int, seed: int = 0) -> list[dict]:
    """One folder of pairs per (noise, strength): root/<noise>_<s>/{clean,noisy}/<image>.png."""
    from priorlab.tasks.dip.degrade import STREAM_CORRUPT, add_noise, seeded
    from priorlab.tasks.images import expand_pairs, load_image, png_bytes

    sets = []
    for noise in noises:
        for s in strengths:
            folder = root / f"{noise}_{s}"
            for sub in ("clean", "noisy"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            for name in images:
                clean = load_image(name, size)
                (folder / "clean" / f"{name}.png").write_bytes(png_bytes(clean))
                noisy = add_noise(clean, s, seeded(seed, STREAM_CORRUPT), noise)
                (folder / "noisy" / f"{name}.png").write_bytes(png_bytes(noisy))
            sets += [{"corrupted": c, "image": r, "noise": noise, "sigma": s} for c, r in expand_pairs(str(folder))]
    return sets


class _Keep:
    """A sink that keeps the psnr and the output of every logging step."""

    def __init__(self):
        self.psnr: dict[int, float] = {}
        self.outputs: dict = {}

    def metrics(self, step, values):
        if "psnr" in values:
            self.psnr[step] = float(values["psnr"])

    def artifact(self, step, name, image):
        if name == "output":
            self.outputs[step] = image.detach().cpu()


def fit_pair(job: dict) -> dict:
    import torch

    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.dip.detectors import Context, Discrepancy
    from priorlab.tasks.dip.inputs import load as load_inputs

    torch.set_num_threads(1)  # one core per fit: fits in parallel, steadier on a shared machine
    n, every = job["iterations"], job["log_every"]
    p = DipParams(
        corrupted=job["corrupted"], image=job["image"], size="native", noise=job["noise"], sigma=job["sigma"],
        arch=job["arch"], depth=job["depth"], width=job["width"], iterations=n, log_every=every,
        snapshots=list(range(every, n + 1, every)), seed=job.get("seed", 0), device="cpu",
    )
    sink = _Keep()
    s = run(p, sink)
    out = {**{k: job[k] for k in ("corrupted", "noise", "sigma")}, "best_psnr": s["best_psnr"],
           "best_step": s["best_step"], "sigma_est": s["sigma_est"]}
    for d in p.detectors:
        out[f"known_{d}"] = (s[f"stop_step_{d}"], s[f"stop_gap_{d}"], s[f"stop_psnr_{d}"])
    # dp with the estimated level, replayed on the same fit's outputs (module doc).
    _, corrupted, _ = load_inputs(p)  # (1, 3, H, W) the file as the run read it
    ctx = Context(corrupted=corrupted, mask=None, noise=p.noise, sigma=s["sigma_est"], seed=p.seed,
                  iterations=n, log_every=every)
    dp = Discrepancy(ctx)
    for step in sorted(sink.outputs):
        if dp.decide(step, dp.statistic(step, sink.outputs[step][None]).item()):
            break
    step = dp.stop_step
    out["auto_dp"] = (step, s["best_psnr"] - sink.psnr[step], sink.psnr[step])
    for d in p.detectors:
        if d != "dp":
            out[f"auto_{d}"] = out[f"known_{d}"]  # needs no noise level: the same decision
    return out


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def table(rows: list[dict], title: str) -> None:
    print(f"\n{title}: {len(rows)} fits")
    print(f"{'detector':10} {'sigma':6} {'median':>7} {'p90':>6} {'<=0.5dB':>8} {'>1dB':>6} "
          f"{'PSNR@stop':>9} {'oracle':>7}")
    keys = sorted({k for r in rows for k in r if k.startswith(("known_", "auto_"))},
                  key=lambda k: (k.split("_", 1)[1], k))
    for k in keys:
        mode, d = k.split("_", 1)
        gaps = [max(0.0, r[k][1]) for r in rows if r.get(k) and r[k][1] is not None]
        if not gaps:
            continue
        at = statistics.mean(r[k][2] for r in rows if r.get(k))
        peak = statistics.mean(r["best_psnr"] for r in rows)
        print(f"{d:10} {mode:6} {statistics.median(gaps):7.2f} {quantile(gaps, 0.9):6.2f} "
              f"{sum(g <= WITHIN for g in gaps) / len(gaps):8.0%} {sum(g > BEYOND for g in gaps) / len(gaps):6.0%} "
              f"{at:9.2f} {peak:7.2f}")
    errs = [r["sigma_est"] / r["sigma"] - 1 for r in rows if r.get("sigma")]
    if errs:
        print(f"sigma estimate: median relative error {statistics.median(errs):+.1%}, "
              f"median |error| {statistics.median(abs(e) for e in errs):.1%}, worst {max(errs, key=abs):+.1%}")


def sigma_table(images, size: int) -> None:
    """The estimate alone (no fit), per noise type and strength: relative error over images."""
    from priorlab.tasks.dip.degrade import STREAM_CORRUPT, add_noise, seeded
    from priorlab.tasks.dip.noise_level import estimate
    from priorlab.tasks.images import load_image

    print(f"\nsigma estimate alone, {size} px, 8-bit, images {', '.join(images)}: relative error min / median / max")
    for noise in NOISES:
        for s in SIGMA_STRENGTHS:
            errs = []
            for name in images:
                clean = load_image(name, size)
                y = (add_noise(clean, s, seeded(0, STREAM_CORRUPT), noise) * 255).round() / 255
                errs.append(estimate(y, noise) / s - 1)
            flag = "  (goal: within 15%)" if noise == "gaussian" else ""
            ok = "" if not flag else ("  met" if max(map(abs, errs)) <= 0.15 else "  MISSED")
            print(f"  {noise:9} {s:5.2f}  {min(errs):+6.1%} {statistics.median(errs):+6.1%} {max(errs):+6.1%}{flag}{ok}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", help="a folder of pairs (noisy/, clean/); default: make pairs from bundled images")
    ap.add_argument("--noise", default="gaussian", help="with --pairs: the set's noise type")
    ap.add_argument("--sigma", type=float, help="with --pairs: the set's true noise level (for the known rows)")
    ap.add_argument("--images", default=",".join(IMAGES), help="bundled images for the made pairs")
    ap.add_argument("--quick", action="store_true", help="2 images, strengths 0.1 and 0.25")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--arch", default="skip")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="fits in parallel (one core each)")
    ap.add_argument("--save", help="write the per-fit results to this JSON file")
    ap.add_argument("--load", help="read results saved with --save instead of fitting")
    args = ap.parse_args()

    fit = {"arch": args.arch, "depth": args.depth, "width": args.width, "iterations": args.iterations,
           "log_every": args.log_every}
    if args.load:
        rows = json.loads(Path(args.load).read_text())
    else:
        tmp = tempfile.TemporaryDirectory()
        if args.pairs:
            from priorlab.tasks.images import expand_pairs

            if args.sigma is None:
                sys.exit("bench_blind: --pairs needs --sigma, the set's true noise level (the known rows use it)")
            jobs = [{"corrupted": c, "image": r, "noise": args.noise, "sigma": args.sigma}
                    for c, r in expand_pairs(args.pairs)]
        else:
            images = args.images.split(",")[:2] if args.quick else args.images.split(",")
            strengths = (0.1, 0.25) if args.quick else STRENGTHS
            jobs = make_pairs(Path(tmp.name), images, NOISES, strengths, args.size)
        jobs = [{**j, **fit} for j in jobs]
        print(f"{len(jobs)} pairs; {args.arch} depth {args.depth} width {args.width}, {args.iterations} steps, "
              f"log every {args.log_every}", file=sys.stderr)
        rows, t0 = [], time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for i, r in enumerate(pool.map(fit_pair, jobs), 1):
                rows.append(r)
                print(f"\r{i}/{len(jobs)} fits, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
                if args.save:  # after every fit: a long run stopped early keeps what it measured
                    Path(args.save).write_text(json.dumps(rows, indent=1))
        print(file=sys.stderr)
    for noise in NOISES:
        part = [r for r in rows if r["noise"] == noise]
        if part:
            table(part, f"{noise}")
    table(rows, "all noise types")
    if not args.pairs:
        sigma_table(SIGMA_IMAGES, args.size)


if __name__ == "__main__":
    main()
