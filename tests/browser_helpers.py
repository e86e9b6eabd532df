"""Driving the dashboard in headless Chromium (Debian's /usr/bin/chromium through the Playwright
package; no browser is ever downloaded): start `priorlab dashboard` on a store, a module-scoped
browser, wait for a page to settle, and record requests that leave the machine."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 45_000
NEEDS_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); browsers are never downloaded")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(sweep_store):
    """`priorlab dashboard --store STORE --port FREE` until the block ends; yields its URL."""
    port = free_port()
    log = open(Path(sweep_store).parent / f"dashboard-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "priorlab.cluster.cli", "dashboard", "--store", str(sweep_store), "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"dashboard not healthy after {START_TIMEOUT_S} s; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        # `priorlab dashboard` runs streamlit as a child: stop the whole session we started.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group of the session started for this server only
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def chromium():
    """A headless Chromium for the block (skips without the playwright package)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def settle(page) -> None:
    """Wait until the script has run and the page stopped changing (bounded)."""
    done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)  # a rerun (e.g. a bound widget syncing the URL) may start
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=stMain] img')).every(i => i.complete)",
        timeout=PAGE_TIMEOUT_MS)


def external_requests(page) -> list[str]:
    """Start recording every request to a host other than this machine."""
    seen: list[str] = []

    def on_request(request) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            seen.append(url)
    page.on("request", on_request)
    return seen


# Every element a reader cannot fully see, measured in the page (boxes in CSS pixels): charts and
# their legends, axes and titles (Vega draws SVG, so each is its own DOM group), text Vega cut
# short with an ellipsis, legends whose symbols all share one colour, data frames wider than the
# main block or hiding columns behind a scrollbar, images off the page or shrunk to a speck.
LAYOUT_JS = """() => {
  const out = [], vw = window.innerWidth, px = v => Math.round(v);
  const block = document.querySelector('[data-testid=stMainBlockContainer]');
  const pad = parseFloat(getComputedStyle(block).paddingRight);
  const main = {right: block.getBoundingClientRect().right - pad};  // the content's right edge
  // Sideways only (a chart's box grows down with its drawing); 3 px of rounding and stroke.
  const sticksOut = (r, box) => r.width > 0 && (r.left < box.left - 3 || r.right > box.right + 3);
  // A legend symbol's look: its colour (fill, or stroke for lines), dash and shape.
  const look = p => [[p.getAttribute('fill'), p.getAttribute('stroke')].find(c => c && c !== 'transparent' && c !== 'none'),
                     p.getAttribute('stroke-dasharray'), p.getAttribute('d')].join(' ');
  const charts = document.querySelectorAll('[data-testid=stMain] [data-testid=stVegaLiteChart]');
  charts.forEach((c, i) => {
    const box = c.getBoundingClientRect();
    const title = (c.querySelector('g.role-title text') || {}).textContent || `chart ${i + 1}`;
    if (box.right > Math.min(vw, main.right) + 2) out.push(`chart "${title}": right edge ${px(box.right)} px, main block ends at ${px(main.right)}`);
    const svg = c.querySelector('svg');
    if (svg && sticksOut(svg.getBoundingClientRect(), box)) out.push(`chart "${title}": drawing ${px(svg.getBoundingClientRect().width)} px wide in a ${px(box.width)} px box`);
    for (const g of c.querySelectorAll('g.role-legend, g.role-axis, g.role-title')) {
      const r = g.getBoundingClientRect();
      const role = g.classList.contains('role-legend') ? 'legend' : g.classList.contains('role-axis') ? 'axis' : 'title';
      if (sticksOut(r, box) || r.right > vw + 2) out.push(`chart "${title}": ${role} [${px(r.left)}, ${px(r.right)}] outside its chart [${px(box.left)}, ${px(box.right)}]`);
    }
    for (const t of c.querySelectorAll('g.role-legend text, g.role-axis text, g.role-title text'))
      if (t.textContent.endsWith('…')) out.push(`chart "${title}": text cut short "${t.textContent}"`);
    for (const leg of c.querySelectorAll('g.role-legend')) {
      const looks = Array.from(leg.querySelectorAll('g.role-legend-symbol path')).map(look);
      if (looks.length > 1 && new Set(looks).size === 1) out.push(`chart "${title}": all ${looks.length} legend symbols look alike (${looks[0].split(' ')[0]})`);
    }
  });
  document.querySelectorAll('[data-testid=stMain] [data-testid=stDataFrame]').forEach((d, i) => {
    const r = d.getBoundingClientRect();
    if (r.right > main.right + 2) out.push(`data frame ${i + 1}: right edge ${px(r.right)} px beyond the main block (${px(main.right)})`);
    const s = d.querySelector('.dvn-scroller');
    // The Runs page's table is over every axis and metric: it scrolls sideways by design.
    const wide = location.pathname.endsWith('/runs') && i === 0;
    if (s && !wide && s.scrollWidth > s.clientWidth + 2) out.push(`data frame ${i + 1}: ${px(s.scrollWidth - s.clientWidth)} px of columns off-screen (columns: ${Array.from(d.querySelectorAll('th')).map(t => t.textContent).join(', ').slice(0, 300)})`);
  });
  document.querySelectorAll('[data-testid=stMain] img').forEach((im, i) => {
    const r = im.getBoundingClientRect();
    if (r.width > 0 && (r.right > main.right + 2 || r.right > vw + 2)) out.push(`image ${i + 1} (${im.alt}): right edge ${px(r.right)} px beyond the main block`);
    if (r.width > 0 && r.width < 48 && im.naturalWidth >= 48) out.push(`image ${i + 1} (${im.alt}): ${im.naturalWidth} px shown at ${px(r.width)} px`);
  });
  // Text the page itself cut with an ellipsis (metric labels, tabs, captions): the reader
  // cannot get the rest. Form widgets are left out: their full value shows when opened.
  document.querySelectorAll('[data-testid=stMain] *').forEach(e => {
    if (!e.childElementCount && e.textContent.trim() && getComputedStyle(e).textOverflow === 'ellipsis'
        && e.scrollWidth > e.clientWidth + 1 && !e.closest('[data-testid=stMultiSelect], [data-testid=stSelectbox], [data-testid=stTextInput]'))
      out.push(`text cut short: "${e.textContent.trim().slice(0, 80)}"`);
  });
  document.querySelectorAll('[data-testid=stMain] [data-testid=stElementContainer]').forEach(e => {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > main.right + 2) out.push(`${e.innerText.slice(0, 40)}…: right edge ${px(r.right)} px beyond the main block`);
  });
  return out;
}"""


def layout_problems(page) -> list[str]:
    """What a reader cannot fully see on the page as drawn now (see LAYOUT_JS)."""
    return list(dict.fromkeys(page.evaluate(LAYOUT_JS)))


def error_boxes(page) -> list[str]:
    """The text of every exception and error box on the page."""
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [boxes.nth(i).inner_text()[:300] for i in range(boxes.count())]
