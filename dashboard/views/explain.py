"""Explain: one text, every model side by side (predictions, word attributions, agreement).

Editing the text re-runs every model, so a word changed is a quick counterfactual.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components.explain_panel import explain_panel, method_controls
from dashboard.components.sidebar import require_run

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
    key = require_run(token_view="token_explain")  # a token run has its own screen
    if key is None:
        return
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
