"""Each model's entities on one sentence, a student's with its calibrated p(agrees with the teacher) badge:
drawn alike by the Explain and Batch views of a token run."""

from __future__ import annotations

from typing import Mapping, Sequence

import streamlit as st

from dashboard import state
from dashboard.components import safe


def model_entity_rows(key: state.RunKey, words: Sequence[str], tags_by_model: Mapping[str, Sequence[str]],
                      types: Sequence[str], columns: int = 1) -> None:
    """One row a model (its name, then ``words`` with its entities marked; a student's entities carry their
    p(agrees) badge), in ``columns`` columns, and the badge's definition under them when any was drawn."""
    from kdcore.tasks.token.analysis import entity_html
    from kdcore.tasks.token.entity_trust import ENTITY_DEFINITIONS

    badges = {name: marks[0] for name, marks in state.entity_stand_ins(key, (tuple(words),)).items()}
    slots = st.columns(columns) if columns > 1 else [st.container()]
    for k, (name, tags) in enumerate(tags_by_model.items()):
        with slots[k % len(slots)]:
            st.markdown(f"**{safe.md(name)}**")
            st.html(entity_html(words, tags, types, badges.get(name)))
    if badges:
        st.caption(f"p after a student's entity: {ENTITY_DEFINITIONS['p(agrees) per entity']}")
