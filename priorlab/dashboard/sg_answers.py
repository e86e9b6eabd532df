"""The StyleGAN page's last section: the report's questions answered with the numbers, and the
report's StyleGAN claims checked over the same runs.

One page, one answer: a sentence states a verdict in bold only when the claim that asks the same
question (analysis/findings) reaches one. Where the claim says "not enough data", the sentence
gives what these runs showed and says that it is too little to call it (a mean over one run once
read as a bold "w keeps more" beside a claims table saying "not enough data").
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from priorlab import vocab
from priorlab.analysis import findings
from priorlab.analysis import stylegan as sgt
from priorlab.dashboard import computed
from priorlab.dashboard.widgets import fmt_number as fmt

SG_CLAIMS = [c.id for c in findings.STYLEGAN_CLAIMS]
BADGE = {findings.SUPPORTED: "green", findings.CONTRADICTED: "red", findings.NOT_ENOUGH: "gray"}
FLIPS, KEEPS, IDENTITY = "stylegan-z-flips-sooner", "stylegan-w-keeps-features", "stylegan-identity-not-preserved"
SOONER = {"same": "about the same point in z and w", "z": "sooner in z than in w", "w": "sooner in w than in z"}


def _decided(verdicts: dict[str, str], claim: str) -> bool:
    return verdicts.get(claim) in (findings.SUPPORTED, findings.CONTRADICTED)


def _too_few(claim: str) -> str:
    return f" (too few runs to call it: the claim `{claim}` below says {findings.NOT_ENOUGH})"


def _pairs(n) -> str:
    """"1 pair", "3 pairs" (the page read "Over 1 pairs … 1 of 1 pairs flip")."""
    return f"{n} pair" + ("" if n == 1 else "s")


def _flips(fa: sgt.FlipAnswer, verdicts: dict[str, str]) -> str:
    parts = [f"along {r.space.replace('_', ' ')} at "
             + (f"frame **{fmt(r.flip_step)}**, " if len(fa.steps) == 1 else "")
             + f"**{fmt(r.flip_frac, '.0%')}** of the way ({r.n_flip} of {_pairs(r.n)} flip"
             + ("s)" if r.n == 1 else ")")
             for r in fa.per_space.itertuples()]
    text = (f"**Where does the classifier flip?** Over {_pairs(fa.pairs)} "
            f"({'frames 0–' + str(fa.steps[0] - 1) if len(fa.steps) == 1 else 'various lengths'}), the label first "
            "changes " + "; ".join(parts) + ".")
    for r in fa.vs_w.itertuples():
        text += f" On the same endpoints, {sgt.sooner_text(r.space.replace('_', ' '), 'w lerp', *r[2:])}."
    if fa.verdict and _decided(verdicts, FLIPS):
        text += (f" So here the classifier changes its mind **{SOONER[fa.verdict]}** (the report: after two "
                 "steps in z, five in w).")
    elif fa.verdict:
        text += f" On average it changes its mind {SOONER[fa.verdict]} here" + _too_few(FLIPS) + "."
    return text


def _identity(ta: sgt.TraversalAnswer, verdicts: dict[str, str]) -> str:
    def per(col: str, spec: str = ".2f") -> str:
        return " and ".join(f"**{fmt(ta.by_space.loc[s, col], spec)}** in {s}" for s in ta.by_space.index)

    verdict = ("not preserved" + (f" in {' or '.join(ta.lost)}" if len(ta.lost) < len(ta.by_space) else "")
               if ta.lost else "preserved")
    said = (f"Identity is **{verdict}**" if _decided(verdicts, IDENTITY)
            else f"On average identity is {verdict}{_too_few(IDENTITY)},")
    return (f"**Is identity preserved?** At ±α_max the frames keep an SSIM to the starting image of "
            f"{per('ssim_at_max')} (1 = identical; identity counts as kept at ≥ {sgt.IDENTITY_SSIM}), with a pixel "
            f"RMSE of {per('pixel_dist_at_max', '.3f')}. {said}"
            + (f" (kept in {', '.join(ta.kept)})" if ta.kept and ta.lost else "") + " along these directions.")


def _space(ta: sgt.TraversalAnswer, verdicts: dict[str, str]) -> str:
    per = " and ".join(f"**{fmt(ta.by_space.loc[s, 'ssim_loss_per_dprob'], '.3f')}** in {s}" for s in ta.by_space.index)
    text = (f"**Does noise space (z) or style space (w) work better?** Per unit of attribute change, the "
            f"identity lost (1 − SSIM summed over frames, divided by the summed change in probability) is {per}")
    if ta.keeps_more and _decided(verdicts, KEEPS):
        text += (f": **{ta.keeps_more} keeps more of the original features** ({ta.ratio:.2f}× less identity lost "
                 "per unit of change)")
    elif ta.keeps_more:
        text += f": {ta.keeps_more} lost {ta.ratio:.2f}× less here" + _too_few(KEEPS)
    text += "."
    if ta.val_accuracy:
        text += (f" The SVM finds the attribute with validation accuracy **{fmt(ta.val_accuracy['z'])}** in z and "
                 f"**{fmt(ta.val_accuracy['w'])}** in w.")
    return text


def _traversals(ta: sgt.TraversalAnswer) -> str:
    def per(col: str, spec: str) -> str:
        return " and ".join(f"**{fmt(ta.by_space.loc[s, col], spec)}** in {s}" for s in ta.by_space.index)

    return (f"**Are the traversals successful?** From −α_max to +α_max the probability of the positive class "
            f"changes by {per('prob_delta', '+.2f')}. The share of traversals that start below the threshold and "
            f"end above it (success) is {per('success_rate', '.0%')}; the share whose probability rises "
            f"monotonically is {per('prob_monotone_frac', '.0%')}.")


def render(d, done: pd.DataFrame, sweeps: tuple, where: str) -> None:
    """Section 5 over `done` (the finished StyleGAN runs of `sweeps`, every sweep when empty);
    `where` names that scope in words."""
    st.subheader("z or w? The report's questions, answered", anchor=False)
    n_runs = {k: int((done["kind"] == k).sum()) for k in vocab.STYLEGAN_KINDS}
    st.caption(f"Over every finished StyleGAN run in {where}: "  # "0 sample, 0 interpolate, …" listed what is not there
               + (", ".join(f"{n} {k.removeprefix('stylegan-')}" for k, n in n_runs.items() if n) or "none") + ".")
    table = computed.findings(d.root, d.token, sweeps)
    table = table[table["claim"].isin(SG_CLAIMS)]
    verdicts = dict(zip(table["claim"], table["verdict"]))

    fa = sgt.flip_answer(done)
    st.markdown(_flips(fa, verdicts) if fa is not None
                else f"**Where does the classifier flip?** No finished interpolation run in {where}.")
    ta = sgt.traversal_answer(done)
    if ta is None:
        st.markdown("**Is identity preserved? Does z or w work better? Are the traversals successful?** "
                    f"No finished traversal run in {where}.")
    else:
        for text in (_identity(ta, verdicts), _space(ta, verdicts), _traversals(ta)):
            st.markdown(text)

    if not table.empty:
        st.markdown(f"**The report's StyleGAN claims, checked over the same runs ({where}):**")
        for _, row in table.iterrows():
            c = st.columns([3, 2, 7])
            c[0].markdown(f"`{row['claim']}`")
            with c[1]:
                st.badge(row["verdict"], color=BADGE.get(row["verdict"], "gray"))
            c[2].caption(row["explanation"])
        st.page_link("views/findings.py", label="All claims on the Findings page", icon=":material/fact_check:")
