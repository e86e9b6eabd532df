"""The dashboard's server process: `python -m priorlab.dashboard.serve STREAMLIT-RUN-ARGS…`.

`priorlab dashboard` becomes this process. It imports what the pages need, then hands over to
Streamlit's own command line (`streamlit run …`) in the same process. Streamlit runs every page
script in the server process, so a module imported here is already in `sys.modules` when the
first page asks for it.

Why before the server listens, not on the first page: scipy.stats, Altair, scikit-learn (under
Optuna's importance evaluators) and pandas cost 1.5-2 s of imports on a small machine, which
the first visitor's first page paid on top of reading the store (bench_dashboard: Analysis'
first render in a fresh process ~2.9 s at 10k runs, ~1.6 s after this). A shared dashboard
is started once and opened many times; its start is where that cost belongs. It runs on the
main thread before Streamlit starts any other: two threads importing one package at once can
deadlock (app.py's `_prewarm` met that with narwhals).
"""

from __future__ import annotations

import sys
import time

# The libraries the pages import that cost noticeable time. priorlab's own page modules are
# not among them: they are quick to import, and their `st.cache_data` decorators would warn
# that no Streamlit runtime exists yet.
WARM_MODULES = ("pandas", "PIL.Image", "altair", "scipy.stats", "optuna.importance")


def warm() -> float:
    """Import `WARM_MODULES`; the seconds it took."""
    import importlib

    t = time.perf_counter()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return time.perf_counter() - t


def main(argv: list[str]) -> None:
    warm()
    from streamlit.web import cli

    sys.argv = ["streamlit", *argv]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
