"""Batch page additions from the audit: the saved hybrid's answer per row, and a filter by slice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state

__all__ = ["with_hybrid", "slice_filter", "SLICE_KINDS"]

SLICE_KINDS = {"all rows": None, "has a negation word": "negation", "has a contrast word": "contrast",
               "contains a keyword": "keyword", "matches a regular expression": "regex"}


def with_hybrid(key: state.RunKey, frame: pd.DataFrame, probs: dict, label_names: list[str]) -> pd.DataFrame:
    """The results with the saved hybrid's answer (kdcore.certify: the student above its certified threshold,
    the teacher elsewhere) and who gives it, for the student saving the most teacher passes; unchanged for a
    run without a hybrid."""
    from kdcore.certify import HYBRID_FILE
    from kdcore.trust import stand_in_scores

    path = state.meta(key).path / HYBRID_FILE
    if not path.is_file():
        return frame
    entries = json.loads(path.read_text(encoding="utf-8")).get("students", {})
    entries = {n: e for n, e in entries.items() if n in probs and e.get("threshold") is not None}
    if not entries:
        return frame
    name = max(entries, key=lambda n: (entries[n].get("teacher_passes_saved") or 0, n))
    entry = entries[name]
    # every stand-in score is a function of the class probabilities, so log-probabilities stand for the logits
    scores = stand_in_scores(np.log(np.clip(probs[name], 1e-300, 1.0)), entry["score"])
    routed = scores >= entry["threshold"]
    answer = np.where(routed, probs[name].argmax(axis=1), probs["teacher"].argmax(axis=1))
    frame = frame.copy()
    frame["hybrid"] = np.asarray(label_names, dtype=object)[answer]
    frame["answered by"] = np.where(routed, name, "teacher")
    st.caption(f"Hybrid (certified fidelity {entry['target']:.2f} at {entry['confidence']:.0%} confidence): the "
               f"student answers {routed.mean():.0%} of these rows, sparing the teacher those passes.")
    return frame


def slice_filter(frame: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
    """Keep the rows of one slice (negation or contrast words, a keyword, a regular expression)."""
    from kdcore.audit.slices import text_mask

    left, right = st.columns([1, 2])
    kind = SLICE_KINDS[left.selectbox("Slice", list(SLICE_KINDS), key="batch_slice")]
    if kind is None:
        return frame
    value = ""
    if kind in ("keyword", "regex"):
        value = right.text_input("Keyword or regular expression", key="batch_slice_value")
        if not value.strip():
            return frame
    try:
        mask = text_mask(texts, kind, value)
    except ValueError as err:
        st.error("That slice cannot be built:")
        st.text(str(err))
        return frame
    rows = {i + 1 for i in np.flatnonzero(mask)}
    return frame[frame["row"].isin(rows)]
