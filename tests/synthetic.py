"""A synthetic results store with plausible Deep Image Prior runs, filled in seconds.

For benchmarks and dashboard development: no torch, no training — parameters from the
study's grid (architecture × depth × sigma × loss × task/region × image × seed), summaries
with effects shaped like the report's findings (sigma 0.5 and 64-pixel holes are harder,
depth 4 is worse than depth 2, skip connections soften that, L2 > L1 >> KL), PSNR curves
that rise and (for denoising) fall again as the network starts fitting the noise, and a
handful of small PNG artifacts shared by content.

    python tests/synthetic.py /tmp/synth --runs 10000 --steps 25     # ~1M metric rows
"""

from __future__ import annotations

import argparse
import os
import struct
import time
import zlib
from itertools import product
from pathlib import Path

import numpy as np

from priorlab.analysis.store import Store, _dumps
from priorlab.vocab import run_id

ARCHS = {"seed-double": 0.5, "seed-single": 0.0, "skip": 1.2}          # best-PSNR offset (dB)
DEPTHS = {2: 0.0, 3: -0.7, 4: -1.6}                        # halved for "skip"
LOSSES = {"l2": 0.0, "l1": -0.6, "kl": -7.0}
IMAGES = {"astronaut": 0.0, "coffee": -0.5, "chelsea": 0.4, "camera": -0.8, "rocket": 0.8}
SETTINGS = [  # task, sigma, region, base best PSNR, PSNR of the corrupted image
    ("denoise", 0.1, None, 29.0, 20.0),
    ("denoise", 0.5, None, 22.5, 8.5),
    ("inpaint", 0.1, 32, 27.0, 18.0),
    ("inpaint", 0.1, 64, 24.5, 14.5),
]
METRICS = ("psnr", "ssim", "loss", "psnr_ema")
NODES = ("node-0", "node-1", "node-2", "node-3")
IMAGE_SIZE = 48


def encode_png(rgb: np.ndarray) -> bytes:
    """A minimal RGB8 PNG encoder (no Pillow needed): `rgb` is uint8 `(H, W, 3)`."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def grid(n_runs: int) -> list[dict]:
    """The first `n_runs` parameter sets of the study grid, seed by seed."""
    out: list[dict] = []
    seed = 0
    while len(out) < n_runs:
        for (task, sigma, region, _, _), arch, depth, loss, image in product(
                SETTINGS, ARCHS, DEPTHS, LOSSES, IMAGES):
            out.append({"task": task, "arch": arch, "depth": depth, "sigma": sigma, "loss": loss,
                        "region": region, "image": image, "seed": seed, "iterations": 2000,
                        "size": 64})
            if len(out) == n_runs:
                break
        seed += 1
    return out


def _images(rng: np.random.Generator) -> dict:
    """Clean, corrupted and output images (PNG bytes) keyed by what they depend on."""
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE
    out: dict = {}
    for i, image in enumerate(IMAGES):
        f = 2 + i
        clean = np.stack([0.5 + 0.5 * np.sin(f * xx * 3 + c + yy * (i + 1)) * np.cos(f * yy * 2 - c)
                          for c in range(3)], axis=-1)
        out["clean", image] = clean
        for task, sigma, region, _, _ in SETTINGS:
            if task == "denoise":
                corrupted = clean + rng.normal(0, sigma, clean.shape)
            else:
                corrupted = clean.copy()
                n = region * IMAGE_SIZE // 128
                corrupted[IMAGE_SIZE // 3:IMAGE_SIZE // 3 + n, IMAGE_SIZE // 3:IMAGE_SIZE // 3 + n] = 0
            out["corrupted", image, task, sigma, region] = corrupted
        for q in range(5):  # output quality buckets: blurrier and noisier as q grows
            k = 1 + 2 * q
            kernel = np.ones(k) / k
            blurred = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 0, clean)
            blurred = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 1, blurred)
            out["output", image, q] = blurred + rng.normal(0, 0.02 * q, clean.shape)
    return {k: encode_png((np.clip(v, 0, 1) * 255).round()) for k, v in out.items()}


def make_synthetic_store(root: str | os.PathLike, n_runs: int = 10_000, n_steps: int = 100, *,
                         seed: int = 0, frac_pending: float = 0.0, chunk: int = 1000,
                         artifacts: bool = True) -> Store:
    """Fill the store at `root` with `n_runs` DIP-like runs of `n_steps` logged steps each.

    Metric rows: `n_runs × n_steps × 4` (psnr, ssim, loss, psnr_ema). Sweeps:
    `synthetic-denoise` and `synthetic-inpaint` by task, plus `synthetic-smoke` holding the
    seed-0 runs again (so some runs belong to two sweeps). About 0.3 % of runs end in `error`,
    some KL runs (and a few others) `diverged`, `frac_pending` of them are still `pending`.
    """
    rng = np.random.default_rng(seed)
    store = Store(root, fsync=False)
    params = grid(n_runs)
    kind = "dip"
    ids = [run_id(kind, p) for p in params]
    config = "kind: dip\nsynthetic: true\n"
    for name in ("synthetic-denoise", "synthetic-inpaint", "synthetic-smoke"):
        store.upsert_sweep(name, config, "synthetic-host")
    with store.batch():
        for task in ("denoise", "inpaint"):
            store.register_runs(f"synthetic-{task}", [
                {"run_id": i, "kind": kind, "params": p}
                for i, p in zip(ids, params) if p["task"] == task])
        store.register_runs("synthetic-smoke", [
            {"run_id": i, "kind": kind, "params": p} for i, p in zip(ids, params) if p["seed"] == 0])

    images = _images(rng) if artifacts else {}
    shas = {k: store.put_file(v)[0] for k, v in images.items()}
    size = IMAGE_SIZE
    setting_of = {(t, s, r): (base, corr) for t, s, r, base, corr in SETTINGS}
    iterations = 2000
    steps = np.linspace(iterations / n_steps, iterations, n_steps).round().astype(np.int64)
    t0 = time.time() - n_runs * 2.0

    for lo in range(0, n_runs, chunk):
        ps, rids = params[lo:lo + chunk], ids[lo:lo + chunk]
        m = len(ps)
        base = np.array([setting_of[p["task"], p["sigma"], p["region"]][0] for p in ps])
        corr = np.array([setting_of[p["task"], p["sigma"], p["region"]][1] for p in ps])
        depth_pen = np.array([DEPTHS[p["depth"]] * (0.5 if p["arch"] == "skip" else 1.0) for p in ps])
        peak = (base + depth_pen + np.array([ARCHS[p["arch"]] + LOSSES[p["loss"]] + IMAGES[p["image"]]
                                             for p in ps]) + rng.normal(0, 0.35, m))
        tau = np.array([120 + 90 * p["depth"] for p in ps]) * rng.uniform(0.8, 1.25, m)
        overfit = np.array([(3.0 * p["sigma"] + 0.4) if p["task"] == "denoise" else 0.3 for p in ps])
        t = steps[None, :].astype(float)
        rise = 1 - np.exp(-t / tau[:, None])
        decline = overfit[:, None] * np.clip(t - 4 * tau[:, None], 0, None) / iterations
        psnr = corr[:, None] + (peak - corr)[:, None] * rise - decline + rng.normal(0, 0.15, (m, n_steps))
        ema = np.empty_like(psnr)
        ema[:, 0] = psnr[:, 0]
        for j in range(1, n_steps):
            ema[:, j] = 0.9 * ema[:, j - 1] + 0.1 * psnr[:, j]
        ssim = np.clip(1 - np.exp(-(psnr - 8) / 9), 0, 1)
        loss = 10 ** (-psnr / 10) + np.array([p["sigma"] ** 2 for p in ps])[:, None]

        # Outcomes: error runs stop early (no summary), diverged runs turn NaN, pending log nothing.
        u = rng.uniform(size=m)
        p_div = np.array([0.03 if p["loss"] == "kl" else 0.002 for p in ps])
        status = np.where(u < frac_pending, "pending",
                          np.where(u < frac_pending + 0.003, "error",
                                   np.where(u < frac_pending + 0.003 + p_div, "diverged", "done")))
        n_logged = np.full(m, n_steps)
        cut = rng.integers(1, max(n_steps, 2), m)
        n_logged[status == "pending"] = 0
        n_logged[status == "error"] = np.minimum(cut, n_steps)[status == "error"]
        div = status == "diverged"
        mask_nan = (np.arange(n_steps)[None, :] >= cut[:, None]) & div[:, None]
        for a in (psnr, ema, ssim, loss):
            a[mask_nan] = np.nan

        names = np.array(METRICS)
        def rows():
            for k in range(m):
                n = int(n_logged[k])
                if n == 0:
                    continue
                vals = np.stack([psnr[k, :n], ssim[k, :n], loss[k, :n], ema[k, :n]], axis=1)
                rid = rids[k]
                st = steps[:n].tolist()
                for j, row in enumerate(vals.tolist()):
                    s = st[j]
                    yield from zip((rid,) * 4, (s,) * 4, names.tolist(), row)

        with store.batch() as c:
            store.log_metrics_rows(rows())
            updates, art_rows = [], []
            for k, p in enumerate(ps):
                st = status[k]
                if st == "pending":
                    continue
                started = t0 + (lo + k) * 2.0
                seconds = float(30 + 25 * p["depth"] + rng.uniform(0, 10))
                n = int(n_logged[k])
                summary = error = None
                if st == "error":
                    error = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (synthetic)"
                    seconds *= n / n_steps
                else:
                    curve = psnr[k, :n]
                    best = int(np.nanargmax(curve)) if np.isfinite(curve).any() else 0
                    last = int(np.flatnonzero(np.isfinite(curve))[-1]) if np.isfinite(curve).any() else 0
                    summary = {"best_psnr": float(curve[best]), "best_step": int(steps[best]),
                               "final_psnr": float(curve[-1]), "best_ssim": float(np.nanmax(ssim[k, :n])),
                               "final_ssim": float(ssim[k, n - 1]), "final_loss": float(loss[k, n - 1]),
                               "psnr_corrupted": float(corr[k]), "seconds": round(seconds, 2),
                               "last_finite_step": int(steps[last])}
                updates.append((st, error, NODES[(lo + k) % len(NODES)], started, started + seconds,
                                _dumps(summary) if summary else None, t0 - 60.0, rids[k]))
                if artifacts:
                    # quality bucket of the output image: 0 sharpest … 4 worst
                    q = int(np.clip((2 - (peak[k] - base[k])) // 1.5, 0, 4)) if st == "done" else 4
                    key = (p["image"], p["task"], p["sigma"], p["region"])
                    last_step = int(steps[n - 1])
                    mid_step = int(steps[max(n // 2 - 1, 0)])
                    for step, name, k_img in ((0, "clean", ("clean", p["image"])),
                                              (0, "corrupted", ("corrupted", *key)),
                                              (mid_step, "output", ("output", p["image"], min(q + 1, 4))),
                                              (last_step, "output", ("output", p["image"], q))):
                        art_rows.append((rids[k], step, name, shas[k_img], size, size))
            c.executemany("""UPDATE runs SET status = ?, error = ?, node = ?, started_at = ?,
                             finished_at = ?, summary = ?, attempts = 1, created_at = ? WHERE run_id = ?""", updates)
            c.executemany("""INSERT OR REPLACE INTO artifacts(run_id, step, name, sha256, width, height)
                             VALUES (?, ?, ?, ?, ?, ?)""", art_rows)
    for name in ("synthetic-denoise", "synthetic-inpaint", "synthetic-smoke"):
        store.set_sweep_status(name, "running" if frac_pending else "done")
    return store


def _bench(root: Path, n_runs: int, n_steps: int) -> None:
    """Build a store, then time ingest and the reads the dashboard makes (adds a `bench` sweep
    and extra metric rows: a bench store is for measuring only)."""
    import shutil

    if root.exists():
        shutil.rmtree(root)
    t = time.perf_counter()
    store = make_synthetic_store(root, n_runs=n_runs, n_steps=n_steps)
    build = time.perf_counter() - t
    with store._reader() as c:
        n_rows = c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        n_art = c.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    print(f"built {n_runs} runs, {n_rows:,} metric rows, {n_art:,} artifact rows in {build:.1f} s "
          f"({os.path.getsize(store.db_path) / 1e6:.0f} MB db)")

    # Metric ingest as a sweep's writer sees it: 32 trials running at once, each logging 4
    # metrics per step, handed over in batches of ~5k rows (one transaction each).
    bench = [{"run_id": f"bench-{i:05d}", "kind": "dip", "params": {"i": i}} for i in range(320)]
    store.register_runs("bench", bench)
    for r in bench:
        store.start_run(r["run_id"])
    rows = [(bench[g * 32 + k]["run_id"], step, name, float(step))
            for g in range(10) for step in range(0, 2000, 10) for k in range(32)
            for name in ("psnr", "ssim", "loss", "psnr_ema")]
    t = time.perf_counter()
    for lo in range(0, len(rows), 5000):
        store.log_metrics_rows(rows[lo:lo + 5000])
    dt = time.perf_counter() - t
    print(f"ingest: log_metrics_rows, 32 concurrent runs, batches of 5k: {len(rows) / dt:,.0f} rows/s "
          f"({len(rows):,} rows)")
    ids = store.runs(sweep="synthetic-denoise")["run_id"].tolist()
    spread = [(ids[i % len(ids)], 10_000 + i // len(ids), "extra", float(i)) for i in range(100_000)]
    t = time.perf_counter()
    for lo in range(0, len(spread), 20_000):
        store.log_metrics_rows(spread[lo:lo + 20_000])
    dt = time.perf_counter() - t
    print(f"ingest: log_metrics_rows, worst case (each batch of 20k rows spread over {len(ids):,} "
          f"runs): {len(spread) / dt:,.0f} rows/s")
    t = time.perf_counter()
    for k in range(200):
        store.log_metrics(bench[k]["run_id"], 5000, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    dt = time.perf_counter() - t
    print(f"ingest: log_metrics, one transaction per call of 4 values: {800 / dt:,.0f} rows/s "
          f"({dt / 200 * 1e3:.2f} ms/call)")
    ids = store.runs(sweep="synthetic-denoise")["run_id"].tolist() + \
        store.runs(sweep="synthetic-inpaint")["run_id"].tolist()

    def timed(label, fn, repeat=5):
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        shape = getattr(out, "shape", None) or len(out)
        print(f"{label:<48} {best * 1e3:8.1f} ms  {shape}")

    six = ids[:3] + ids[-3:]
    timed("runs()", store.runs)
    timed("runs(sweep='synthetic-smoke')", lambda: store.runs(sweep="synthetic-smoke"))
    timed("runs(where={'arch': 'skip', 'depth': [2, 4]})",
          lambda: store.runs(where={"arch": "skip", "depth": [2, 4]}))
    timed("metrics(run_ids=6 ids)", lambda: store.metrics(run_ids=six))
    timed("metrics(run_ids=6 ids, names=['psnr'])", lambda: store.metrics(run_ids=six, names=["psnr"]))
    timed("artifacts(run_ids=6 ids)", lambda: store.artifacts(run_ids=six))
    timed("counts('synthetic-denoise')", lambda: store.counts("synthetic-denoise"))
    timed("sweeps()", store.sweeps)
    timed("done_ids(all ids)", lambda: store.done_ids(ids))
    timed("metrics(names=['psnr'])  (full scan)", lambda: store.metrics(names=["psnr"]), repeat=1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--bench", action="store_true", help="delete ROOT, rebuild it and time reads/writes")
    a = ap.parse_args(argv)
    if a.bench:
        _bench(a.root, a.runs, a.steps)
    else:
        t = time.perf_counter()
        make_synthetic_store(a.root, n_runs=a.runs, n_steps=a.steps)
        print(f"wrote {a.root} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
