"""Explain: one text, every model side by side (predictions, word attributions, agreement).

Editing the text re-runs every model, so a word changed is a quick counterfactual.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import safe
from dashboard.components.entities import model_entity_rows
from dashboard.components.explain_panel import explain_panel, method_controls
from dashboard.components.sidebar import draw_for_task, require_run

__all__ = ["render", "TEXT_KEY"]

TEXT_KEY = "explain_text"
EXAMPLE_KEY = "explain_example"
MAX_CHARS = 20_000
_NO_EXAMPLE = "—"
_FALLBACK_TEXT = "A warm, funny film with a cast that clearly loves the material, even if the plot drags."


def _use_example() -> None:
    choice = st.session_state.get(EXAMPLE_KEY)
    if choice and choice != _NO_EXAMPLE:
        st.session_state[TEXT_KEY] = choice


def render() -> None:
    """Draw the run's page as its task's output asks (a label per text, or tags per word)."""
    key = require_run()
    if key is not None:
        draw_for_task(key, {"MulticlassPreds": _draw_labels, "SequenceTags": _draw_tags})


def _draw_labels(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("Explain a prediction")
    st.caption("Every model predicts the same text, and the same attribution method explains each one's score "
               "for the same class, word by word. Edit the text to see how every model reacts.")
    test_texts, _ = state.test_split(key)
    examples = list(dict.fromkeys([*test_texts[:40], *state.example_texts()]))
    st.selectbox("Pick an example", [_NO_EXAMPLE, *examples], key=EXAMPLE_KEY, on_change=_use_example,
                 help="Texts from the run's test split and from assets/examples.")
    if TEXT_KEY not in st.session_state:
        st.session_state[TEXT_KEY] = examples[0] if examples else _FALLBACK_TEXT
    text = st.text_area("Text", key=TEXT_KEY, height=110, max_chars=MAX_CHARS,
                        help="Press Ctrl+Enter (or click outside) to explain it.")
    settings = method_controls(run.label_names, prefix="explain")
    every = ["teacher", *run.student_names]
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Models", every, default=every, key="explain_models")
    shared = right.toggle("One colour scale for all", value=False, key="explain_shared_scale",
                          help="Off: each row is scaled by its own largest |score|. On: one scale for every row.")
    if not chosen:
        st.info("Choose at least one model.")
        return
    names = None if len(chosen) == len(every) else tuple(n for n in every if n in chosen)
    explain_panel(key, text, settings, names=names, prefix="explain", shared_scale=shared)


TAG_SENTENCE_KEY = "token_explain_sentence"
TAG_WORDS_KEY = "token_explain_words"


def _draw_tags(key: state.RunKey) -> None:
    from kdcore.tasks.token.analysis import entity_choices, entity_html, entity_legend_html, model_tags
    from kdcore.visualize import highlight_table_html, legend_html

    st.title("Explain the tags of a sentence")
    st.caption("Every model tags the same words (BIO-valid Viterbi decoding). Pick an entity to see, word by word, "
               "what moves each model's score for the teacher's tag at its first word: the teacher's integrated "
               "gradients, the students' exact feature contributions.")
    sentences, gold = state.test_sentences(key)
    choices = list(range(min(len(sentences), 200)))
    index = st.selectbox("Test sentence", choices, key=TAG_SENTENCE_KEY,
                         format_func=lambda i: " ".join(sentences[i])[:120])
    typed = st.text_input("Or type a sentence (words separated by spaces)", key=TAG_WORDS_KEY)
    words = typed.split() if typed and typed.split() else sentences[index] if sentences else []
    if not words:
        st.info("No sentence to explain.")
        return
    types = state.entity_types(key)
    tags = model_tags(state.models(key), [words])
    tags = {name: rows[0] for name, rows in tags.items()}
    st.html(entity_legend_html(types))
    if gold is not None and not (typed and typed.split()):
        st.markdown("**gold**")
        st.html(entity_html(words, gold[index], types))
    model_entity_rows(key, words, tags, types, columns=2)
    found = entity_choices(words, tags)
    if not found:
        st.info("No model finds an entity in this sentence.")
        return
    position = st.radio("Entity", [p for p, _ in found], format_func=lambda p: safe.md(dict(found).get(p)),
                        horizontal=True, key="token_explain_entity")
    explained = state.word_explanations(key, tuple(words), int(position), None)
    teacher = explained["teacher"]
    st.markdown(f"Word attributions for **{safe.md(teacher.target_name)}** at *{safe.md(words[int(position)])}* "
                "(red: towards the tag, blue: against it; each row on its own scale).")
    st.html(legend_html(teacher.target_name))
    st.html(highlight_table_html(explained, show_warnings=True))
