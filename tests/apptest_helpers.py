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


def displayed(df):
    """A table's cells as the browser shows them: a Styler's display values, except that
    Streamlit's grid draws its own text over every null cell whatever the Styler says (its
    `na_rep` "—" never reached the page: the second walk): the table's `placeholder`, else "None"."""
    values = df.value.reset_index(drop=True)
    values.columns = range(values.shape[1])
    arrow = df.proto.arrow_data
    if arrow.HasField("styler"):
        import pyarrow as pa

        shown = pa.ipc.open_stream(arrow.styler.display_values).read_all().to_pandas().reset_index(drop=True)
        shown = shown.iloc[:, -values.shape[1]:]  # the display frame may carry the index first
        shown.columns = values.columns
    else:
        shown = values.astype(str)
    return shown.where(~values.isna(), df.proto.placeholder if df.proto.HasField("placeholder") else "None")


def specs(at) -> list[dict]:
    """The Vega-Lite specs of every chart on the page."""
    import json

    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def channels(node, name: str):
    """Every `name` channel definition (e.g. "color") anywhere in a Vega-Lite spec (layers too)."""
    if isinstance(node, dict):
        enc = node.get("encoding")
        if isinstance(enc, dict) and name in enc:
            yield enc[name]
        for v in node.values():
            yield from channels(v, name)
    elif isinstance(node, list):
        for v in node:
            yield from channels(v, name)
