"""StyleGAN: z vs w samples, interpolation flips, SVM directions and traversals (in progress)."""

from __future__ import annotations

import streamlit as st

st.title("StyleGAN")
st.info("No StyleGAN runs yet: run `priorlab sweep configs/stylegan_smoke.yaml`", icon=":material/inbox:")
