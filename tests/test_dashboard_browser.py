"""The dashboard in a real browser: `priorlab dashboard` on the sweep store, every page opened in
headless Chromium (Debian's /usr/bin/chromium driven by the Playwright package; no browser is
ever downloaded). Checks that images decode, charts draw and no error box shows; screenshots
land in a temporary folder (printed with `-s`).

Set PRIORLAB_DOCS_SCREENSHOT=1 to also write the Compare page to docs/compare.png.
"""

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

import pytest

from analysis.store import Store

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 45_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); browsers are never downloaded"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(sweep_store):
    with serve(sweep_store) as url:
        yield url


@contextlib.contextmanager
def serve(sweep_store):
    """`priorlab dashboard --store STORE --port FREE` until the block ends; yields its URL."""
    port = _free_port()
    log = open(Path(sweep_store).parent / f"dashboard-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.cli", "dashboard", "--store", str(sweep_store), "--port", str(port)],
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


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _compare_ids(store: Path) -> list[str]:
    runs = Store(store).runs()
    den = runs[(runs["kind"] == "dip") & (runs["status"] == "done") & (runs["task"] == "denoise")]
    den = den[(den["sigma"] == den["sigma"].min()) & (den["loss"] == "l2")]
    return den.sort_values(["depth", "arch"], ascending=[False, True])["run_id"].tolist()[:3]


def _settle(page) -> None:
    """Wait until the script has run and the page stopped changing (bounded)."""
    done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)  # a rerun (e.g. a bound widget syncing the URL) may start
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=stMain] img')).every(i => i.complete)",
        timeout=PAGE_TIMEOUT_MS)


def _decoded_images(page) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('[data-testid=stMain] img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length")


def _charts_drawn(page) -> int:
    return page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').count()


PAGES = [  # (path, title, images at least, charts at least)
    ("/", "Sweeps", 0, 0),
    ("/runs", "Runs", 0, 0),
    ("/compare?runs={ids}&diff=true", "Compare", 12, 4),
    ("/grid", "Grid", 1, 0),
    ("/analysis", "Analysis", 0, 3),
    ("/findings", "Findings", 0, 0),
    ("/stylegan", "StyleGAN", 2, 1),
]


def test_every_page_renders_in_chromium(server, browser, sweep_store, tmp_path_factory):
    shots = tmp_path_factory.mktemp("dashboard-screenshots")
    ids = ",".join(_compare_ids(sweep_store))
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        for path, title, min_images, min_charts in PAGES:
            page.goto(server + path.format(ids=ids), wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            name = title.lower()
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            heading = page.locator('[data-testid="stMain"] h1').first.inner_text(timeout=PAGE_TIMEOUT_MS)
            assert heading.strip() == title, f"{path}: page shows {heading!r}"
            assert page.locator('[data-testid="stException"]').count() == 0, f"{path}: exception box"
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, f"{path}: error box"
            if min_images:
                page.wait_for_function(
                    f"() => Array.from(document.querySelectorAll('[data-testid=stMain] img'))"
                    f".filter(i => i.complete && i.naturalWidth > 0).length >= {min_images}",
                    timeout=PAGE_TIMEOUT_MS)
            assert _decoded_images(page) >= min_images, f"{path}: images did not decode"
            if min_charts:
                page.wait_for_function(
                    "() => document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, "
                    f"[data-testid=stVegaLiteChart] svg').length >= {min_charts}", timeout=PAGE_TIMEOUT_MS)
            assert _charts_drawn(page) >= min_charts, f"{path}: charts missing"
            if name == "runs":
                assert page.locator('[data-testid="stDataFrame"]').count() >= 1
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        print(f"screenshots in {shots}")
        page.close()


def test_compare_link_keeps_its_runs_and_docs_screenshot(sweep_store, browser):
    """The shared link /compare?runs=…, opened first on a fresh server, runs through the app's
    navigation (sidebar with every page) and shows those runs; optionally writes
    docs/compare.png."""
    ids = _compare_ids(sweep_store)
    with serve(sweep_store) as url:  # a server of its own: the link is its first request
        _open_compare_link(url, ids, browser)


def _open_compare_link(url: str, ids: list[str], browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    try:
        page.goto(f"{url}/compare?runs={','.join(ids)}", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        _settle(page)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text(timeout=PAGE_TIMEOUT_MS)
        entries = [x.strip() for x in nav.split("\n") if x.strip()]  # titles (and icon names)
        assert all(t in entries for _, t, _, _ in PAGES) and "app" not in entries, entries
        assert "Store:" in page.locator('[data-testid="stSidebar"]').inner_text()
        assert f"runs={','.join(ids)}" in page.url.replace("%2C", ",")
        body = page.locator('[data-testid="stMain"]').inner_text()
        for rid in ids:
            assert rid[:8] in body
        if os.environ.get("PRIORLAB_DOCS_SCREENSHOT"):
            # Streamlit scrolls inside its main block: grow the viewport to the content instead.
            height = page.evaluate(
                "() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
            page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 2400)})
            _settle(page)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(ROOT / "docs" / "compare.png"), full_page=False)
    finally:
        page.close()
