"""Shared by the AppTest suites: open one dashboard page on a store, check it raised nothing,
and write a store with the real sweep code."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "priorlab" / "dashboard" / "app.py")
TIMEOUT = 60  # seconds per script run: two shared cores


def open_page(monkeypatch, store: Path, page: str, **query) -> AppTest:
    """Run the real entry script on `page` with `?query` set, as a shared link would."""
    monkeypatch.setenv("PRIORLAB_STORE", str(store))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(f"views/{page}.py")
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def sweep_into_store(config_text: str, root: Path, name: str = "sweep", expect: int = 0) -> Path:
    """Write `config_text` beside `root/store` as NAME.yaml and run it into that store with the
    real sweep code; `expect` is its exit status (1 when a run is meant to fail)."""
    from priorlab.cluster.sweep import run_sweep

    cfg = root / f"{name}.yaml"
    cfg.write_text(config_text)
    status = run_sweep(str(cfg), store_dir=str(root / "store"), echo=lambda s: None)
    assert status == expect, f"the sweep in {cfg} ended with exit status {status}, not {expect}"
    return root / "store"
