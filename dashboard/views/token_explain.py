"""Explain a token run: one sentence tagged by every model side by side (entity highlights), then, for an
entity picked from any model's, each model's word attributions for the teacher's tag at its first word."""

from __future__ import annotations

import streamlit as st

from dashboard import state, token_state
from dashboard.components import safe

__all__ = ["render"]

SENTENCE_KEY = "token_explain_sentence"
WORDS_KEY = "token_explain_words"


def render(key: state.RunKey) -> None:
    from kdcore.token_analysis import entity_choices, entity_html, entity_legend_html, model_tags
    from kdcore.visualize import highlight_table_html, legend_html

    run = state.meta(key)
    st.title("Explain the tags of a sentence")
    st.caption("Every model tags the same words (BIO-valid Viterbi decoding). Pick an entity to see, word by word, "
               "what moves each model's score for the teacher's tag at its first word: the teacher's integrated "
               "gradients, the students' exact feature contributions.")
    sentences, gold = token_state.test_split(key)
    choices = list(range(min(len(sentences), 200)))
    index = st.selectbox("Test sentence", choices, key=SENTENCE_KEY,
                         format_func=lambda i: " ".join(sentences[i])[:120])
    typed = st.text_input("Or type a sentence (words separated by spaces)", key=WORDS_KEY)
    words = typed.split() if typed and typed.split() else sentences[index] if sentences else []
    if not words:
        st.info("No sentence to explain.")
        return
    types = token_state.entity_types(key)
    tags = model_tags(state.models(key), [words])
    tags = {name: rows[0] for name, rows in tags.items()}
    st.html(entity_legend_html(types))
    if gold is not None and not (typed and typed.split()):
        st.markdown("**gold**")
        st.html(entity_html(words, gold[index], types))
    left, right = st.columns(2)
    for k, (name, model_tags_) in enumerate(tags.items()):
        with (left if k % 2 == 0 else right):
            st.markdown(f"**{safe.md(name)}**")
            st.html(entity_html(words, model_tags_, types))
    found = entity_choices(words, tags)
    if not found:
        st.info("No model finds an entity in this sentence.")
        return
    position = st.radio("Entity", [p for p, _ in found], format_func=lambda p: safe.md(dict(found).get(p)), horizontal=True,
                        key="token_explain_entity")
    explained = token_state.explanations(key, tuple(words), int(position), None)
    teacher = explained["teacher"]
    st.markdown(f"Word attributions for **{safe.md(teacher.target_name)}** at *{safe.md(words[int(position)])}* "
                "(red: towards the tag, blue: against it; each row on its own scale).")
    st.html(legend_html(teacher.target_name))
    st.html(highlight_table_html(explained, show_warnings=True))
