"""Overview of a token run: gold entity F1, word fidelity and entity agreement of every model, the
distilled-minus-twin margins with their intervals, and the per-type table of every model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import safe

__all__ = ["render"]

_FORMATS = {"entity_f1": "%.3f", "word_fidelity": "%.3f", "entity_agreement_f1": "%.3f", "MB": "%.2f",
            "sentences/s": "%.0f", "parameters": "%d"}


def render(key: state.RunKey) -> None:
    from kdcore.token_metrics import token_metrics_table

    run = state.meta(key)
    metrics = run.metrics or {}
    models = metrics.get("models", {})
    st.title(f"Run {safe.md(run.name)}")
    types = sorted({t[2:] for t in run.label_names if t != "O"})
    st.caption(f"Token classification (one BIO tag a word; every model read with the BIO-valid Viterbi decoding) · "
               f"teacher {safe.code(run.manifest.get('teacher', {}).get('source', '?'))} · entity types "
               f"{safe.md(', '.join(types))} · "
               f"test set {metrics.get('test_size', '?')} sentences, {metrics.get('test_words', '?')} words")
    if not models:
        st.warning("This run has no metrics.json; rebuild it.")
        return
    teacher = models.get("teacher", {})
    distilled = [n for n, e in run.info.students.items() if e.distilled and n in models]
    cols = st.columns(3)
    cols[0].metric("Teacher entity F1 (test)", f"{teacher.get('entity_f1', float('nan')):.3f}",
                   help="Gold entities, exact span and type, micro-averaged over types.")
    if distilled:
        best = max(distilled, key=lambda n: models[n].get("entity_agreement_f1") or 0)
        cols[1].metric(f"Word fidelity of {safe.md(best)}", f"{models[best].get('fidelity', float('nan')):.3f}",
                       help="Share of test words on which the student's tag equals the teacher's.")
        cols[2].metric(f"Entity agreement of {safe.md(best)}", f"{models[best].get('entity_agreement_f1', float('nan')):.3f}",
                       help="F1 of the student's entities with the teacher's entities as reference (exact span and type).")
    st.subheader("Model card")
    card = token_metrics_table(metrics)
    st.dataframe(card, hide_index=True, width="stretch", placeholder="—",
                 column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in _FORMATS.items()
                                if c in card.columns})
    margins = metrics.get("margins", {})
    if margins:
        st.markdown("**Distilled vs label-trained twin**: entity agreement F1 with the teacher, difference and "
                    f"{round(100 * next(iter(margins.values())).get('level', 0.95))}% bootstrap interval over test sentences")
        rows = [{"student": name, "twin": m["twin"], "distilled": models[name].get("entity_agreement_f1"),
                 "twin's": models[m["twin"]].get("entity_agreement_f1"), "difference": m["difference"],
                 "low": m["low"], "high": m["high"], "word fidelity difference": m.get("word_fidelity_difference")}
                for name, m in margins.items()]
        frame = pd.DataFrame(rows)
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in frame.columns[2:]})
    st.subheader("Gold entities per type")
    st.caption("Precision, recall and F1 per entity type on the test split (exact span and type), as seqeval's "
               "classification report.")
    names = [n for n in models if models[n].get("per_type")]
    for name, tab in zip(names, st.tabs(names) if names else []):
        with tab:
            table = pd.DataFrame(models[name]["per_type"])
            st.dataframe(table, hide_index=True, width="stretch", height="content",
                         column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                        for c in ("precision", "recall", "f1")})
    explanations = metrics.get("explanations") or {}
    if explanations.get("summary"):
        st.subheader("Explanation agreement with the teacher")
        st.caption(f"On the first word of {explanations.get('sample_size', '?')} of the teacher's test entities: the "
                   "teacher's integrated gradients for its tag there against each student's exact feature "
                   "contributions, on the same words.")
        summary = pd.DataFrame(explanations["summary"])
        st.dataframe(summary, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                    for c in summary.columns if c.endswith(("_mean", "_std"))})
