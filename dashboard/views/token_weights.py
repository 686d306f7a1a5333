"""Weights of a token run: the window features that push a word most towards each entity type's B- and I- tags."""

from __future__ import annotations

import streamlit as st

from dashboard import state, token_state
from dashboard.components import safe

__all__ = ["render"]


def render(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("What the token students learned")
    st.caption("Features are read directly: w=… the word, shape=…, pre/suf=… its first / last letters, w[-1]=… the "
               "word before, first / last. Importance: the mean gradient x value over the test words that have the "
               "feature; for the linear student exactly its weight.")
    types = token_state.entity_types(key)
    cols = st.columns([2, 2, 1])
    student = cols[0].selectbox("Student", run.student_names, key="token_weights_student")
    kind = cols[1].selectbox("Entity type", types, key="token_weights_type")
    top = int(cols[2].number_input("Top", min_value=5, max_value=50, value=15, step=5, key="token_weights_top"))
    table = token_state.top_features(key, student, kind, top)
    left, right = st.columns(2)
    for column, prefix in ((left, "B"), (right, "I")):
        rows = table[table["tag"] == f"{prefix}-{kind}"]
        column.markdown(f"**{safe.md(f'{prefix}-{kind}')}**")
        if rows.empty:
            column.caption("No feature of the test words pushes towards this tag.")
        else:
            column.dataframe(rows.drop(columns="tag"), hide_index=True, width="stretch",
                             column_config={"importance": st.column_config.NumberColumn("importance", format="%.3f")})
