"""`priorlab dashboard`'s server process imports the pages' slow libraries before it listens
(dashboard/serve.py), so the first visitor's first page does not pay for them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from priorlab.dashboard.serve import WARM_MODULES


def test_every_warmed_module_exists():
    # warm() skips a module it cannot import (an optional one); a misspelt name would be skipped
    # silently and the first page would pay for the real one again.
    missing = [name for name in WARM_MODULES if importlib.util.find_spec(name) is None]
    assert not missing


def test_warm_leaves_the_page_libraries_imported_and_no_torch():
    code = ("import sys; from priorlab.dashboard.serve import WARM_MODULES, warm; warm(); "
            "print([m for m in WARM_MODULES if m not in sys.modules], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["[]", "False"]
