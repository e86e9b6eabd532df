"""Issue 18 defect 10 (layout) measured in headless Chromium at a 1400 px wide window: every Vega
legend inside its chart and the window with no label cut short, legend symbols drawn in colour,
the Analysis page's Stopping table without a horizontal scroll, and StyleGAN frames on Compare
shown at a readable size. The server, browser and settling come from test_dashboard_browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.analysis.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from browser_helpers import NEEDS_CHROMIUM, PAGE_TIMEOUT_MS, settle as _settle  # noqa: E402
from test_dashboard_browser import browser, server  # noqa: E402,F401  (module fixtures)
from test_issue18_layout import long_label_runs, stylegan_runs  # noqa: E402

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]

WINDOW = {"width": 1400, "height": 1600}
MIN_FRAME = 96  # px: a StyleGAN frame shown smaller is a thumbnail nobody can read

# Every legend of every chart: its box against the chart's box, the chart's container and the
# window, and any label Vega shortened with an ellipsis. (Vega draws SVG here: a clipped legend
# still has its full box, outside the chart's.)
LEGENDS = """() => Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]')).flatMap((chart, i) => {
  const box = chart.getBoundingClientRect(), parent = chart.parentElement.getBoundingClientRect();
  const title = (chart.querySelector('g.role-title text') || {}).textContent || `chart ${i}`;
  return Array.from(chart.querySelectorAll('g.role-legend')).map(g => {
    const r = g.getBoundingClientRect();
    const inside = r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1
      && r.bottom <= box.bottom + 1 && box.right <= parent.right + 1 && box.right <= window.innerWidth;
    const cut = Array.from(g.querySelectorAll('text')).map(t => t.textContent).filter(t => t.includes('…'));
    return {chart: title, inside, cut, legend: [r.left, r.right, r.top, r.bottom].map(Math.round),
            box: [box.left, box.right, box.top, box.bottom].map(Math.round)};
  });
})"""

# Legend symbols whose every visible paint is black (or that paint nothing): they tell nothing.
BLACK_SYMBOLS = """() => {
  const seen = c => c && c !== 'none' && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c);
  const black = c => /^(#000|#000000|black|rgb\\(0, ?0, ?0\\))$/i.test(c);
  return Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart] g.role-legend-symbol path'))
    .map(p => [p.getAttribute('fill'), p.getAttribute('stroke')])
    .filter(([fill, stroke]) => ![fill, stroke].some(c => seen(c) && !black(c)));
}"""

# The data grid after the "Stopping" heading: how wide its content is against what it shows.
STOPPING_TABLE = """() => {
  const heading = Array.from(document.querySelectorAll('[data-testid=stMain] h3'))
    .find(h => h.textContent.trim() === 'Stopping');
  const grid = Array.from(document.querySelectorAll('[data-testid=stDataFrame]'))
    .find(g => heading.compareDocumentPosition(g) & Node.DOCUMENT_POSITION_FOLLOWING);
  const scroller = grid.querySelector('.dvn-scroller');
  return {content: scroller.scrollWidth, shown: scroller.clientWidth, right: grid.getBoundingClientRect().right,
          window: window.innerWidth};
}"""

# Each image's caption, shown width and natural width.
IMAGES = """() => Array.from(document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')).map(e => {
  const img = e.querySelector('img'), cap = e.querySelector('[data-testid=stImageCaption]');
  return {caption: cap ? cap.textContent.trim() : '', shown: img.getBoundingClientRect().width,
          natural: img.naturalWidth};
})"""


def _open(browser, url: str):
    page = browser.new_page(viewport=WINDOW)
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
    _settle(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stVegaLiteChart] svg').length > 0",
                           timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)  # Vega lays out legends after the first paint
    return page


def _assert_legends_fit(page, where: str) -> None:
    legends = page.evaluate(LEGENDS)
    assert legends, f"{where}: no legends measured"
    outside = [x for x in legends if not x["inside"]]
    assert not outside, f"{where}: legends outside their chart or the window: {outside}"
    cut = [x for x in legends if x["cut"]]
    assert not cut, f"{where}: legend labels cut short: {cut}"


def test_compare_legends_fit_their_charts_with_long_run_labels(server, browser, sweep_store):
    """Six runs differing in six parameters, detector statistic on: the detector legend was cut off
    beside the run legend, and run labels past 400 px ended in an ellipsis."""
    ids = ",".join(long_label_runs(sweep_store))
    page = _open(browser, f"{server}/compare?runs={ids}&cmp_det=true")
    try:
        _assert_legends_fit(page, "Compare (DIP)")
        assert not page.evaluate(BLACK_SYMBOLS)
    finally:
        page.close()


def test_stylegan_compare_legends_are_whole_and_in_colour(server, browser, sweep_store):
    """The space legend drew black dots; every legend must fit and paint its symbols."""
    page = _open(browser, f"{server}/compare?runs={','.join(stylegan_runs(sweep_store))}")
    try:
        _assert_legends_fit(page, "Compare (StyleGAN)")
        assert not page.evaluate(BLACK_SYMBOLS), "legend symbols painted only black"
    finally:
        page.close()


def test_stopping_table_needs_no_horizontal_scroll(server, browser):
    """Beside the box plot, the table's p90, within 0.5 dB and saved columns were off-screen."""
    page = _open(browser, f"{server}/analysis")
    try:
        table = page.evaluate(STOPPING_TABLE)
        assert table["content"] <= table["shown"] + 1, f"the Stopping table scrolls sideways: {table}"
        assert table["right"] <= table["window"], table
    finally:
        page.close()


def _frames_across(store: Path, caption: str) -> int | None:
    """How many frames side by side a stored StyleGAN image holds, from its run's parameters."""
    runs = Store(store).runs()
    if caption.startswith("strip/"):
        return int(runs.loc[runs["kind"] == vocab.SG_INTERPOLATE, "steps"].iloc[0])
    if caption == vocab.grid_artifact():
        return int(runs.loc[runs["kind"] == vocab.SG_SAMPLE, "n"].iloc[0])
    return None


def test_stylegan_frames_on_compare_are_readable(server, browser, sweep_store):
    """Strips and grids in narrow per-run columns showed their frames ~30 px wide."""
    runs = Store(sweep_store).runs()
    dip = runs.loc[(runs["kind"] == vocab.DIP) & (runs["status"] == vocab.DONE), "run_id"].iloc[0]
    page = _open(browser, f"{server}/compare?runs={','.join([*stylegan_runs(sweep_store), dip])}")
    try:
        sample = runs[runs["kind"] == vocab.SG_SAMPLE].iloc[0]
        side = int(runframe.summary_of(sample, "resolution"))  # the generator's: one frame's side
        measured = []
        for img in page.evaluate(IMAGES):
            across = _frames_across(sweep_store, img["caption"])
            if across:  # stored as make_grid: `across` frames of `side` px with 2-px gaps
                measured.append((img["caption"], round(img["shown"] * side / (2 + across * (side + 2)))))
        assert measured, "no strips or grids on the page"
        small = [m for m in measured if m[1] < MIN_FRAME]
        assert not small, f"frames shown smaller than {MIN_FRAME} px: {small}"
    finally:
        page.close()
