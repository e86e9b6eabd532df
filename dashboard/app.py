"""priorlab dashboard: `priorlab dashboard --store DIR` runs `streamlit run dashboard/app.py`.

This entry script only sets up the page, the sidebar shared by every page, and the page list.
Each page is a file in `views/`; its URL path is its name (`/runs`, `/compare?runs=id1,id2`;
Sweeps, the default page, is `/`), and its widgets keep their values in the query string, so
any view can be shared as a link. Adding a page is one line in `PAGES`.

The folder is deliberately not called `pages/`: Streamlit treats a `pages/` folder beside the
entry script as an old-style multipage app, and a fresh server process then serves a direct
link such as `/compare?runs=…` by running that file alone, without this script.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import streamlit as st

# `streamlit run` puts this folder on sys.path, not the project root: make `dashboard.*`
# and `analysis.*` importable when the package is not installed.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from analysis.store import StoreError  # noqa: E402
from dashboard import data  # noqa: E402

PAGES = [
    st.Page("views/sweeps.py", title="Sweeps", icon=":material/monitoring:", url_path="sweeps", default=True),
    st.Page("views/runs.py", title="Runs", icon=":material/table_rows:", url_path="runs"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("views/grid.py", title="Grid", icon=":material/grid_view:", url_path="grid"),
    st.Page("views/analysis.py", title="Analysis", icon=":material/query_stats:", url_path="analysis"),
    st.Page("views/findings.py", title="Findings", icon=":material/fact_check:", url_path="findings"),
    st.Page("views/stylegan.py", title="StyleGAN", icon=":material/face:", url_path="stylegan"),
]


@st.cache_resource(show_spinner=False)
def _prewarm() -> bool:
    """Import scipy.stats (~1–2 s, needed for p-values) once per server process, in the
    background after the first page has been drawn, so Analysis and Findings open fast."""
    def work() -> None:
        try:
            import scipy.stats  # noqa: F401
        except Exception:
            pass
    threading.Thread(target=work, name="priorlab-prewarm", daemon=True).start()
    return True


st.set_page_config(page_title="priorlab", page_icon=":material/blur_on:", layout="wide")
page = st.navigation(PAGES)

d = data.Data()
with st.sidebar:
    st.caption(f"Store: `{d.root}`")
    if "auto_refresh" not in st.session_state:
        # On by default while a sweep is still running.
        try:
            sweeps = d.sweeps() if d.usable else None
        except StoreError:  # the page below shows the one-line error
            sweeps = None
        st.session_state["auto_refresh"] = bool(
            sweeps is not None and not sweeps.empty and (sweeps["status"] == "running").any())
    st.toggle("Auto-refresh", key="auto_refresh",
              help="Re-read the store every few seconds (only the live parts of a page rerun).")
    if st.session_state["auto_refresh"]:
        st.select_slider("Every (seconds)", options=[2, 5, 10, 30, 60], value=5, key="refresh_s")
    if st.button("Reload data", icon=":material/refresh:", help="Drop cached queries and re-read the store"):
        data.clear_caches()

try:
    page.run()
except StoreError as e:  # a store damaged under a running dashboard: say so once, no traceback
    st.error(str(e), icon=":material/error:")
finally:
    _prewarm()
