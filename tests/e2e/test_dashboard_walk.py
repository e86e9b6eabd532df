"""Issue 18's walk in a real browser: every page, for every kind it offers, with each sweep and
with all of them, on a store like the next human walk's (tests/walk_store.py: the session's
`tiny` grid plus a random search with ASHA, packed runs, a plug-in loss, no-reference runs,
every StyleGAN kind and a failed StyleGAN run with a list parameter).

A view fails on an exception or error box, a JavaScript error, anything a reader cannot fully
see (browser_helpers.LAYOUT_JS: clipped charts, legends and axes, text cut short, data frames
wider than the page or hiding columns, images off the page or shrunk), and an empty state for
runs that did finish. Every problem of every view is reported at once. Screenshots land in a
temporary folder (printed with `-s`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest

from browser_helpers import NEEDS_CHROMIUM, PAGE_TIMEOUT_MS, chromium, error_boxes, layout_problems, serve, settle
from priorlab import vocab
from priorlab.analysis.store import Store

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]

WINDOW = {"width": 1400, "height": 1600}  # the window the walk found clipped legends at
MAX_COMPARE = 6  # the Compare page's limit
# What a page says when it has nothing to show: never for finished runs.
EMPTY_STATES = ["No output snapshots", "no output images", "No parameter varies", "No metric curves",
                "This run stored no", "This run recorded no", "not recorded", "No stored images",
                "No images stored", "curves stored for these runs", "No claims to check",
                "holds no runs", "have started yet", "No run has finished", "No finished runs"]


@pytest.fixture(scope="module")
def walk_store(sweep_store, tmp_path_factory) -> Path:
    from walk_store import add_walk_sweeps

    return add_walk_sweeps(sweep_store, tmp_path_factory.mktemp("walk-store"))


def q(path: str, **params) -> str:
    """`path?k=v…` without the empty ones."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def views(runs: pd.DataFrame) -> list[tuple[str, frozenset[str]]]:
    """Every view to open, each with the kinds that have finished runs in what it shows."""
    sweeps = sorted(runs["sweep"].unique())
    done = runs[runs["status"] == vocab.DONE]

    def kinds(sweep: str | None = None) -> frozenset[str]:
        return frozenset(done.loc[done["sweep"] == sweep, "kind"] if sweep else done["kind"])

    out = [("/", kinds())]
    out += [(q("/runs", sweep=s), kinds(s)) for s in [None, *sweeps]]
    for (sweep, kind), group in runs.groupby(["sweep", "kind"]):
        ids = group.sort_values("status")["run_id"].tolist()[:MAX_COMPARE]
        out.append((q("/compare", runs=",".join(ids)), kinds(sweep) & {kind}))
    out += [(q("/grid", grid_kind=k), frozenset({k})) for k in sorted(kinds())]
    out.append((q("/grid", grid_kind=vocab.DIP, grid_task="inpaint"), frozenset({vocab.DIP})))
    for s in [None, *sweeps]:
        out += [(q("/analysis", an_kind=k, sweep=s), frozenset({k})) for k in sorted(kinds(s))]
        out.append((q("/findings", sweep=s), kinds(s)))
    for s in sweeps:
        out += [(q("/search", sr_sweep=s, sr_kind=k), frozenset({k})) for k in sorted(kinds(s))]
    sg_sweeps = sorted(runs.loc[runs["kind"].str.startswith("stylegan"), "sweep"].unique())
    out += [(q("/stylegan", sg_sweep=s), kinds(s)) for s in [None, *sg_sweeps]]
    return out


def view_problems(page, url: str, finished: frozenset[str]) -> list[str]:
    """Open one view and say everything wrong with it."""
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
    settle(page)
    problems = [f"error box: {e}" for e in error_boxes(page)] + layout_problems(page)
    body = page.locator('[data-testid="stMain"]').inner_text()
    # A view of failed runs only may say it has nothing to show; one with finished runs never.
    for phrase in (EMPTY_STATES + [f"No finished {k} run" for k in finished]) if finished else []:
        if phrase in body:
            problems.append(f"empty state {phrase!r} (finished kinds here: {', '.join(sorted(finished))})")
    return problems


def walk(base: str, store: Path, browser, shots: Path) -> dict[str, list[str]]:
    """Every view of `views` in one page; the problems of each view that has some."""
    page = browser.new_page(viewport=WINDOW)
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    found: dict[str, list[str]] = {}
    try:
        for i, (path, finished) in enumerate(views(Store(store).runs())):
            problems = view_problems(page, base + path, finished)
            page.screenshot(path=str(shots / f"{i:02d}-{path.strip('/').split('?')[0] or 'sweeps'}.png"),
                            full_page=True)
            problems += [f"JavaScript error: {e}" for e in js_errors]
            js_errors.clear()
            if problems:
                found[f"{i:02d} {path}"] = problems
    finally:
        page.close()
    return found


def test_the_walk_store_holds_what_the_next_walk_uses(walk_store):
    """The pages are only as tested as the store is varied: keep every ingredient of issue 18's
    walk in it."""
    runs = Store(walk_store).runs()
    assert len(set(runs["sweep"])) >= 2
    search = runs[runs["sweep"] == "search"]
    assert {vocab.DONE, vocab.PRUNED} <= set(search["status"]) and search["lr"].nunique() > 2
    assert (runs["pack_size"] > 1).any(), "packed runs"
    assert runs["loss"].astype(str).str.contains(":").any(), "a plug-in loss"
    assert (runs["reference"] == "none").any() and runs["image"].isna().any(), "no-reference runs"
    done = set(runs.loc[runs["status"] == vocab.DONE, "kind"])
    assert {vocab.DIP, vocab.DIP_BASELINE, vocab.SG_SAMPLE, vocab.SG_INTERPOLATE, vocab.SG_DIRECTION,
            vocab.SG_TRAVERSE} <= done
    failed = runs[runs["status"] == vocab.ERROR]
    assert failed["kind"].str.startswith("stylegan").any() and failed["spaces"].map(lambda v: isinstance(v, list)).any()


def test_every_page_every_kind_every_sweep(walk_store, tmp_path_factory):
    shots = tmp_path_factory.mktemp("walk-screenshots")
    print(f"screenshots in {shots}")
    with serve(walk_store) as url, chromium() as browser:
        found = walk(url, walk_store, browser, shots)
    assert not found, "\n".join(f"{v}:\n  " + "\n  ".join(p) for v, p in found.items())
