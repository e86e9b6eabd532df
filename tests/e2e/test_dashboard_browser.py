"""The dashboard in a real browser: `priorlab dashboard` on the sweep store, every page opened in
headless Chromium (Debian's /usr/bin/chromium driven by the Playwright package; no browser is
ever downloaded). Checks that images decode, charts draw and no error box shows, with DIP and
StyleGAN runs selected, that no empty state shows for finished runs, that no request leaves
the machine, that a view's URL restores it, that a sweep written while the page is open
appears by itself, and that Markdown in a URL stays text. Screenshots land in a temporary
folder (printed with `-s`).

Set PRIORLAB_DOCS_SCREENSHOT=1 to also write the Compare page to docs/compare.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from browser_helpers import PAGE_TIMEOUT_MS, NEEDS_CHROMIUM, ROOT, chromium, serve
from browser_helpers import external_requests as _external_requests
from browser_helpers import settle as _settle
from priorlab.analysis.store import Store

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]


@pytest.fixture(scope="module")
def server(sweep_store):
    with serve(sweep_store) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _compare_ids(store: Path) -> list[str]:
    runs = Store(store).runs()
    den = runs[(runs["kind"] == "dip") & (runs["status"] == "done") & (runs["task"] == "denoise")]
    den = den[(den["sigma"] == den["sigma"].min()) & (den["loss"] == "l2")]
    return den.sort_values(["depth", "arch"], ascending=[False, True])["run_id"].tolist()[:3]


def _decoded_images(page) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('[data-testid=stMain] img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length")


def _charts_drawn(page) -> int:
    return page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').count()


def _clipped_charts(page) -> list[str]:
    """Charts cut off by their box or by the window (a legend or axis the reader cannot see)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]'))
        .filter(e => e.scrollWidth > e.clientWidth + 2 || e.getBoundingClientRect().right > window.innerWidth + 2)
        .map(e => `${Math.round(e.getBoundingClientRect().right)}px wide, scroll ${e.scrollWidth} > ${e.clientWidth}`)""")


def _stylegan_ids(store: Path) -> list[str]:
    runs = Store(store).runs()
    sg = runs[runs["kind"].str.startswith("stylegan") & (runs["status"] == "done")]
    return sg.sort_values("kind")["run_id"].tolist()


PAGES = [  # (path, title, images at least, charts at least)
    ("/", "Sweeps", 0, 0),
    ("/runs", "Runs", 0, 0),
    ("/compare?runs={ids}&diff=true", "Compare", 12, 4),
    ("/compare?runs={sg_ids},{dip_id}", "Compare", 5, 2),
    ("/grid", "Grid", 1, 0),
    ("/grid?grid_kind=stylegan-sample", "Grid", 1, 0),
    ("/grid?grid_kind=stylegan-interpolate", "Grid", 1, 0),
    ("/analysis", "Analysis", 0, 3),
    ("/analysis?an_kind=stylegan-sample", "Analysis", 0, 1),
    ("/analysis?an_kind=stylegan-interpolate", "Analysis", 0, 1),
    ("/search", "Search", 0, 2),
    ("/search?sr_kind=stylegan-sample", "Search", 0, 0),  # one run: says there is no search
    ("/findings", "Findings", 0, 0),
    ("/stylegan", "StyleGAN", 2, 1),
]
# What a page says when it has nothing to show: never for these finished runs.
EMPTY_STATES = ["No output snapshots", "no output images", "No parameter varies", "No metric curves",
                "This run stored no", "not recorded"]


def test_every_page_renders_in_chromium(server, browser, sweep_store, tmp_path_factory):
    shots = tmp_path_factory.mktemp("dashboard-screenshots")
    ids = ",".join(_compare_ids(sweep_store))
    sg_ids = ",".join(_stylegan_ids(sweep_store))
    runs = Store(sweep_store).runs()
    finished_kinds = set(runs.loc[runs["status"] == "done", "kind"])
    empty_states = EMPTY_STATES + [f"No finished {k} run" for k in finished_kinds]
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    external = _external_requests(page)
    try:
        for i, (path, title, min_images, min_charts) in enumerate(PAGES):
            page.goto(server + path.format(ids=ids, sg_ids=sg_ids, dip_id=ids.split(",")[0]),
                      wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            name = f"{i:02d}-{title.lower()}"
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
            assert not _clipped_charts(page), f"{path}: clipped charts {_clipped_charts(page)}"
            if title == "Runs":
                assert page.locator('[data-testid="stDataFrame"]').count() >= 1
            body = page.locator('[data-testid="stMain"]').inner_text()
            for phrase in empty_states:
                assert phrase not in body, f"{path}: empty state {phrase!r} for finished runs"
        assert not errors, f"JavaScript errors: {errors}"
        assert not external, f"requests that left the machine: {external}"
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


def test_view_state_survives_a_kind_switch_and_a_fresh_browser(server, browser):
    """Issue 9: the Grid lost `grid_task` after switching to another kind and back, and the
    StyleGAN z/w tab was not in the URL; a copied URL opened in a fresh browser shows the same."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    try:
        page.goto(f"{server}/grid?grid_task=inpaint", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        _settle(page)
        assert "rows: depth × region" in page.locator('[data-testid="stMain"]').inner_text(), "the inpainting grid"
        page.get_by_role("radio", name="stylegan-sample", exact=True).click()
        _settle(page)
        assert "grid_kind=stylegan-sample" in page.url
        page.get_by_role("radio", name="dip", exact=True).click()
        _settle(page)
        assert "grid_task=inpaint" in page.url, page.url
        assert "rows: depth × region" in page.locator('[data-testid="stMain"]').inner_text(), "the inpainting grid"
        grid_url = page.url

        page.goto(f"{server}/stylegan", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        _settle(page)
        tab = page.get_by_role("tab", name="w space")
        if tab.count():  # the session store has no traversal run: the tab test is in AppTest
            tab.click()
            _settle(page)
            assert "sg_space=w" in page.url
    finally:
        page.close()
    fresh = browser.new_context().new_page()
    try:
        fresh.goto(grid_url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        _settle(fresh)
        assert "grid_task=inpaint" in fresh.url
        assert "rows: depth × region" in fresh.locator('[data-testid="stMain"]').inner_text()
    finally:
        fresh.close()


def test_markdown_in_the_url_is_never_a_link(server, browser):
    """Issue 8: `/compare?runs=[click here](https://example.com)` rendered a live link."""
    page = browser.new_page()
    try:
        page.goto(f"{server}/compare?runs=[click here](https://example.com)", wait_until="domcontentloaded",
                  timeout=PAGE_TIMEOUT_MS)
        _settle(page)
        body = page.locator('[data-testid="stMain"]')
        assert "click here" in body.inner_text()
        assert body.locator('a[href*="example.com"]').count() == 0
    finally:
        page.close()


def test_a_sweep_written_while_the_page_is_open_appears_by_itself(sweep_store, browser, tmp_path):
    """Issue 9: new results showed only with the Auto-refresh toggle on (off by default)."""
    copy = tmp_path / "store"
    shutil.copytree(sweep_store, copy)
    with serve(copy) as url:
        page = browser.new_page()
        external = _external_requests(page)
        try:
            page.goto(url + "/", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            assert "arrived-later" not in page.locator('[data-testid="stMain"]').inner_text()
            store = Store(copy)
            store.upsert_sweep("arrived-later", "kind: dip\n", "host", status="running")
            store.register_runs("arrived-later", [{"run_id": "late0000", "kind": "dip", "params": {"depth": 9}}])
            page.get_by_text("arrived-later").first.wait_for(timeout=PAGE_TIMEOUT_MS)
            assert not external, external
        finally:
            page.close()
