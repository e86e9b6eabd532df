"""Sweeps: how far each sweep has got, what went wrong in the runs that failed, and — when a
sweep name was run with more than one config (an extended sweep) — every config it ran with."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import runframe
from priorlab.dashboard import data
from priorlab.dashboard.widgets import EMPTY, md

FAILED_PER_PAGE = 10
STATUS_COLOR = {vocab.RUNNING: "blue", vocab.DONE: "green", vocab.ERROR: "red", vocab.INTERRUPTED: "orange",
                vocab.DIVERGED: "violet", vocab.PENDING: "gray"}

st.title("Sweeps")
st.caption("Progress of every sweep in the store; failed runs with their errors.")

d0 = data.Data()
data.guard(d0, need_runs=False)


def _when(ts) -> str:
    return "—" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


@st.fragment
def live() -> None:
    d = data.Data()
    sweeps = d.sweeps()
    runs = d.runs()
    if sweeps.empty and runs.empty:
        st.info(data.EMPTY_MESSAGE, icon=":material/inbox:")
        return

    counts = runs["status"].value_counts()
    cols = st.columns(len(vocab.STATUSES) + 1)
    cols[0].metric("runs", f"{len(runs):,}")
    for col, status in zip(cols[1:], vocab.STATUSES):
        col.metric(status, f"{int(counts.get(status, 0)):,}")

    for _, sw in sweeps.iterrows():
        name = sw["name"]
        total = int(sw["n_runs"])
        n = {s: int(sw.get(f"n_{s}", 0)) for s in vocab.STATUSES}
        finished = sum(n[s] for s in vocab.ENDED)
        with st.container(border=True):
            head = st.columns([4, 1])
            head[0].subheader(md(name), anchor=False)
            with head[1]:
                st.badge(sw["status"], color=STATUS_COLOR.get(sw["status"], "gray"))
            st.progress(finished / total if total else 0.0,
                        text=" · ".join([f"{finished} of {total} runs finished", f"{n['done']} done",
                                         # every other way a run ended, where some did: "6 of 6
                                         # finished · 3 done" left a reader to find the 3 pruned
                                         *(f"{n[s]} {s}" for s in vocab.ENDED if s != vocab.DONE and n[s]),
                                         f"{n['running']} running", f"{n['pending']} pending"]))
            table = pd.DataFrame([{"status": s, "runs": n[s]} for s in vocab.STATUSES if n[s]])
            c1, c2 = st.columns([2, 3])
            with c1:
                st.dataframe(table, hide_index=True, width="stretch", placeholder=EMPTY)
            with c2:
                st.markdown(f"**host** {md(sw.get('host') or '—')}  \n**started** {_when(sw.get('created_at'))}  \n"
                            f"**updated** {_when(sw.get('updated_at'))}  \n"
                            f"**finished** {_when(sw.get('finished_at'))}")
                history = d.sweep_configs(name)
                if len(history) > 1:
                    with st.expander(f"config history: {len(history)} configs under this name"):
                        st.caption("This sweep name was run (extended) with each of these configs, oldest "
                                   "first; its runs come from all of them.")
                        for i, text in enumerate(history, start=1):
                            st.markdown(f"**config {i}**" + (" (latest)" if i == len(history) else ""))
                            st.code(text, language="yaml")
                elif isinstance(sw.get("config"), str) and sw["config"].strip():
                    with st.expander("config"):
                        st.code(sw["config"], language="yaml")
            failed_runs(d, runs, name)


def _shown(v):
    return v if isinstance(v, (list, dict)) else data.fmt(v)


def failed_runs(d: data.Data, runs: pd.DataFrame, sweep: str) -> None:
    failed = runs[runframe.in_sweep(runs, sweep) & runs["status"].isin(vocab.FAILED)]
    if failed.empty:
        return
    st.markdown(f"**Failed runs** ({len(failed)})")
    pages = -(-len(failed) // FAILED_PER_PAGE)
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"failed_page_{sweep}")
    labels = data.run_labels(failed)
    params = data.param_columns(runs)
    for _, run in failed.iloc[(page - 1) * FAILED_PER_PAGE: page * FAILED_PER_PAGE].iterrows():
        error = run["error"] if isinstance(run["error"], str) else ""
        first = error.strip().splitlines()
        summary = first[-1] if first else "no traceback recorded"
        with st.expander(md(f"{run['status']} · {labels[run['run_id']]} — {summary[:120]}"),
                         icon=":material/error:"):
            st.caption(f"run {md(run['run_id'])} on {md(run.get('node') or '—')}, "
                       f"finished {_when(run.get('finished_at'))}")
            if error:
                st.code(error, language="python")
            else:
                st.write("No traceback was recorded (a diverged or interrupted run ends without one).")
            st.json({c: _shown(run[c]) for c in params if not runframe.missing(run[c])}, expanded=False)


live()
