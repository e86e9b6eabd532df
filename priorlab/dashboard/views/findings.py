"""Findings: each claim of the seed report checked against the stored runs.

The claims and their checks live in `priorlab.analysis.findings`; this page shows each one with the
numbers behind it and a verdict badge: supported, contradicted, or not enough data.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from priorlab.dashboard import computed, data
from priorlab.analysis import runframe
from priorlab.dashboard.widgets import EMPTY, fmt_number, md, scope_text, sweep_scope

BADGE = {"supported": ("green", ":material/check_circle:"),
         "contradicted": ("red", ":material/cancel:"),
         "not enough data": ("gray", ":material/help:")}

st.title("Findings")
st.caption("The seed report's claims, each checked on matched runs with an effect size and a verdict.")

d = data.Data()
runs = data.guard(d)
all_sweeps = runframe.sweep_names(runs)
sweeps = sweep_scope(all_sweeps)
table = computed.findings(d.root, d.token, sweeps)
st.caption("Checked over the runs of " + scope_text(sweeps, len(all_sweeps)) + ".")

if table.empty:
    st.info("No claims to check.")
    st.stop()

counts = table["verdict"].value_counts()
cols = st.columns(3)
for col, verdict in zip(cols, BADGE):
    col.metric(verdict, int(counts.get(verdict, 0)))

show = st.segmented_control("Show", ["all", *BADGE], default="all", key="verdict", bind="query-params",
                            required=True) or "all"


for _, row in table.iterrows():
    verdict = row["verdict"]
    if show != "all" and verdict != show:
        continue
    color, icon = BADGE.get(verdict, ("gray", ":material/help:"))
    with st.container(border=True):
        head = st.columns([5, 1])
        head[0].markdown(f"**{row['claim']}**")
        with head[1]:
            st.badge(verdict, color=color, icon=icon)
        st.markdown(f"> {row['text']}")
        m = st.columns(4)
        m[0].metric("matched pairs", int(row["n_pairs"]) if pd.notna(row["n_pairs"]) else 0)
        m[1].metric(f"mean difference ({row.get('metric', '')})", fmt_number(row["mean_diff"], "+.3g"))
        lo, hi = fmt_number(row["lo"], "+.3g"), fmt_number(row["hi"], "+.3g")
        m[1].caption(f"95% CI [{lo}, {hi}]" if "—" not in (lo, hi) else
                     "no confidence interval: " + ("no matched pairs" if not row["n_pairs"] or pd.isna(row["n_pairs"])
                                                   else "needs two or more matched pairs"))
        m[2].metric("win rate", fmt_number(row["win_rate"], ".0%"))
        m[3].metric("Wilcoxon p", fmt_number(row["p_value"], ".2g"))
        st.caption(md(f"{row.get('comparison', '')} · runs: {row.get('filter', '')}"))
        if row.get("explanation"):
            st.markdown(md(row["explanation"]))
        if row.get("measure"):
            with st.expander("How this is measured"):
                st.write(row["measure"])

with st.expander("All claims as a table"):
    st.dataframe(table.drop(columns=[c for c in ("text", "measure") if c in table.columns]),
                 hide_index=True, width="stretch", placeholder=EMPTY)
    st.download_button("Download CSV", data=table.to_csv(index=False).encode(), file_name="findings.csv",
                       mime="text/csv", on_click="ignore")
