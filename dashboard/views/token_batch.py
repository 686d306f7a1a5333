"""Batch for a token run: every test sentence with how far each student's tags and entities are from the
teacher's, the sentences with most disagreement first."""

from __future__ import annotations

import streamlit as st

from dashboard import state, token_state
from dashboard.components import safe

__all__ = ["render"]


def render(key: state.RunKey) -> None:
    from kdcore.token_analysis import entity_html

    st.title("Where the students disagree with the teacher")
    st.caption("Per test sentence: the words whose tag differs from the teacher's and the entities (exact span and "
               "type) a student misses or adds, summed over the students in 'total'.")
    table = token_state.disagreements(key)
    only = st.toggle("Only sentences with a disagreement", value=True, key="token_batch_only")
    shown = table[table["total"] > 0] if only else table
    st.dataframe(shown, hide_index=True, width="stretch", key="token_batch_table")
    st.download_button("Download as CSV", safe.csv_bytes(shown), file_name="disagreements.csv",
                       mime="text/csv", key="token_batch_csv", on_click="ignore")
    if shown.empty:
        return
    index = st.selectbox("Look at a sentence", shown["sentence"].tolist(), key="token_batch_pick",
                         format_func=lambda i: table.loc[table["sentence"] == i, "text"].iloc[0][:120])
    sentences, _ = token_state.test_split(key)
    types = token_state.entity_types(key)
    for name, tags in token_state.test_tags(key).items():
        st.markdown(f"**{safe.md(name)}**")
        st.html(entity_html(sentences[index], tags[index], types))
