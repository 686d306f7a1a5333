"""Cached tables of a token run (the token task's counterpart of the tables in state.py); every number is
computed by kdcore (token_analysis, token_explain) and only cached here, keyed by the run's RunKey."""

from __future__ import annotations

import streamlit as st

from dashboard import state

__all__ = ["test_split", "test_tags", "explanations", "top_features", "disagreements", "entity_types"]


@st.cache_data(show_spinner=False, max_entries=16)
def test_split(key: state.RunKey) -> tuple[list[list[str]], list[list[str]] | None]:
    """Words of each test sentence, and the gold tags (None when the run stores none)."""
    data = state.meta(key).split("test")
    gold = [data.tag_names(i) for i in range(len(data))] if data.has_labels else None
    return [list(s) for s in data.sentences], gold


def entity_types(key: state.RunKey) -> list[str]:
    from kdcore.tasks.token.bio import entity_types as types

    return types(state.meta(key).label_names)


@st.cache_data(show_spinner="Tagging the test sentences with every model…", max_entries=8)
def test_tags(key: state.RunKey) -> dict[str, list[list[str]]]:
    from kdcore.tasks.token.analysis import model_tags

    sentences, _ = test_split(key)
    return model_tags(state.models(key), sentences)


@st.cache_data(show_spinner="Explaining the word with every model…", max_entries=64)
def explanations(key: state.RunKey, words: tuple[str, ...], position: int, target: int | None):
    from kdcore.tasks.token.explain import word_explanations

    run = state.full_run(key)
    return word_explanations(run.teacher, run.students, list(words), position, target)


@st.cache_data(show_spinner="Reading the student's features…", max_entries=32)
def top_features(key: state.RunKey, student: str, kind: str, top: int):
    from kdcore.tasks.token.analysis import top_features_by_type

    sentences, _ = test_split(key)
    return top_features_by_type(state.full_run(key).student(student), sentences, kind, top=top)


@st.cache_data(show_spinner=False, max_entries=8)
def disagreements(key: state.RunKey):
    from kdcore.tasks.token.analysis import disagreement_table

    sentences, gold = test_split(key)
    return disagreement_table(sentences, test_tags(key), gold)
