"""priorlab dashboard: `priorlab dashboard --store DIR` runs `streamlit run dashboard/app.py`
(through dashboard/serve.py, which imports the pages' slow libraries before the server listens).

This entry script only sets up the page, the sidebar shared by every page, and the page list.
Each page is a file in `views/`; its URL path is its name (`/runs`, `/compare?runs=id1,id2`;
Sweeps, the default page, is `/`), and its widgets keep their values in the query string, so
any view can be shared as a link. Adding a page is one line in `PAGES`.

The folder is deliberately not called `pages/`: Streamlit treats a `pages/` folder beside the
entry script as an old-style multipage app, and a fresh server process then serves a direct
link such as `/compare?runs=…` by running that file alone, without this script.

Live view: a small fragment in the sidebar looks at the store's change token (two `stat`
calls) every couple of seconds and reruns the page when it moved, so a sweep started while
the dashboard is open appears by itself; the Auto-refresh toggle pauses it. A store that
cannot be read is one `st.error` line on every page (caught here, once), never a traceback.
Nothing is fetched from outside the machine: the favicon is drawn here, not a CDN emoji.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import streamlit as st

# `streamlit run` puts this folder on sys.path, not the project root: make `priorlab.dashboard.*`
# and `priorlab.analysis.*` importable when the package is not installed.
_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from priorlab.dashboard import data  # noqa: E402
from priorlab.dashboard.widgets import md  # noqa: E402

PAGES = [
    st.Page("views/sweeps.py", title="Sweeps", icon=":material/monitoring:", url_path="sweeps", default=True),
    st.Page("views/runs.py", title="Runs", icon=":material/table_rows:", url_path="runs"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("views/grid.py", title="Grid", icon=":material/grid_view:", url_path="grid"),
    st.Page("views/search.py", title="Search", icon=":material/scatter_plot:", url_path="search"),
    st.Page("views/analysis.py", title="Analysis", icon=":material/query_stats:", url_path="analysis"),
    st.Page("views/findings.py", title="Findings", icon=":material/fact_check:", url_path="findings"),
    st.Page("views/stylegan.py", title="StyleGAN", icon=":material/face:", url_path="stylegan"),
]


@st.cache_resource(show_spinner=False)
def _prewarm() -> bool:
    """Import the pages' slow libraries (serve.WARM_MODULES: scipy.stats for p-values, Optuna's
    importance evaluators, …) once per server process, in the background after the first page
    has been drawn, so Analysis, Findings and Search open fast. `priorlab dashboard` has
    imported them before it listened (serve.py), so this matters for a plain
    `streamlit run app.py`."""
    from priorlab.dashboard.serve import warm

    # Altair and scikit-learn both import narwhals: a page's `import altair` on the script thread
    # while this thread imported scikit-learn raised `_DeadlockError` (two threads, one package
    # half-imported by each). Imported here first, the thread finds narwhals complete.
    import altair  # noqa: F401
    threading.Thread(target=warm, name="priorlab-prewarm", daemon=True).start()
    return True


@st.cache_resource(show_spinner=False)
def _favicon():
    """A local favicon (an emoji or a material icon would make the browser fetch it from a CDN)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse([2, 2, 29, 29], fill=(0, 114, 178, 255))
    draw.ellipse([10, 10, 21, 21], fill=(255, 255, 255, 255))
    return img


@st.fragment(run_every=data.refresh_interval())
def _watch(root: str, seen: tuple) -> None:
    """Rerun the whole page when the store's change token moved since the page last ran."""
    if not st.session_state.get("auto_refresh", True):
        return
    now = data.change_token(root) if data.has_db(root) else ()
    if now != seen:
        st.rerun(scope="app")


st.set_page_config(page_title="priorlab", page_icon=_favicon(), layout="wide")
page = st.navigation(PAGES)

d = data.Data()
with st.sidebar:
    st.caption("Store: " + md(d.root))
    st.toggle("Auto-refresh", value=True, key="auto_refresh",
              help="Look for new results every few seconds and redraw the page when the store changed "
                   "(switch off to pause, e.g. while reading a page during a sweep).")
    if st.session_state["auto_refresh"]:
        st.select_slider("Every (seconds)", options=[1, 2, 5, 10, 30, 60], value=data.DEFAULT_POLL_S,
                         key="refresh_s")
    if st.button("Reload data", icon=":material/refresh:", help="Drop cached queries and re-read the store"):
        data.clear_caches()
    _watch(d.root, d.token)

try:
    page.run()
except data.STORE_FAILURES as e:  # a corrupt or vanished store: one line, on every page
    st.error(md(data.failure_line(e, d.root)), icon=":material/error:")
finally:
    _prewarm()
