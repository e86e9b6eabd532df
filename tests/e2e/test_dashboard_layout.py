"""Issue 18 defect 10 (layout) measured in headless Chromium at a 1400 px wide window: the Analysis
page's Stopping table without a horizontal scroll. The server, browser and settling come from
test_dashboard_browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_dashboard_browser import CHROMIUM, PAGE_TIMEOUT_MS, _settle, browser, server  # noqa: E402,F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); browsers are never downloaded"),
]

WINDOW = {"width": 1400, "height": 1600}

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


def _open(browser, url: str):
    page = browser.new_page(viewport=WINDOW)
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
    _settle(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stVegaLiteChart] svg').length > 0",
                           timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)  # Vega lays out legends after the first paint
    return page


def test_stopping_table_needs_no_horizontal_scroll(server, browser):
    """Beside the box plot, the table's p90, within 0.5 dB and saved columns were off-screen."""
    page = _open(browser, f"{server}/analysis")
    try:
        table = page.evaluate(STOPPING_TABLE)
        assert table["content"] <= table["shown"] + 1, f"the Stopping table scrolls sideways: {table}"
        assert table["right"] <= table["window"], table
    finally:
        page.close()

