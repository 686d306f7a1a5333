"""Weights: what the students learned, read directly.

The linear student's weights per class (largest positive and negative), a word search,
its weights against the teacher's mean attribution per word (with their rank
correlation), and the MLP's global feature importances. For a tagging run: each token student's
top features per tag, and a CRF student's tag-transition matrix.
"""

from __future__ import annotations

import math

import streamlit as st

from dashboard import state
from dashboard.components import charts, safe
from dashboard.components.sidebar import draw_for_task, require_run
from kdcore.students import WEIGHT_TABLE_KINDS

__all__ = ["render"]


def _bars(column, frame, figure, key: str, empty: str) -> None:
    if frame.empty:
        column.caption(empty)
    else:
        column.plotly_chart(figure(frame), width="stretch", key=key)


def _pick(run, kind: str, students: list[str], key_prefix: str, default_top: int) -> tuple[str, str, int]:
    """Student, class and how many top features to show (three widgets on one row)."""
    cols = st.columns([2, 2, 1])
    student = cols[0].selectbox(f"{kind} student", students, key=key_prefix)
    label = cols[1].selectbox("Class", run.label_names, index=len(run.label_names) - 1, key=f"{key_prefix}_class")
    top = cols[2].number_input("Top", min_value=5, max_value=100, value=default_top, step=5, key=f"{key_prefix}_top")
    return student, label, int(top)


def _strongest(frame, column: str, top: int):
    """The ``top`` largest positive and the ``top`` most negative rows by ``column``."""
    return frame[frame[column] > 0].nlargest(top, column), frame[frame[column] < 0].nsmallest(top, column)


def _linear_section(key: state.RunKey, run, linear: list[str]) -> None:
    st.subheader("Linear student: weights per class")
    student, label, top = _pick(run, "Linear", linear, "weights_linear", 20)
    weights = state.linear_weights(key, student)
    of_class = weights[weights["class"] == label]
    left, right = st.columns(2)
    positive, negative = _strongest(of_class, "weight", top)
    _bars(left, positive, lambda f: charts.weight_bars(f, "weight", f"Towards {label}", "#d62728"), "weights_pos",
          f"No positive weight for {safe.md(label)}.")
    _bars(right, negative, lambda f: charts.weight_bars(f, "weight", f"Against {label}", "#1f77b4"), "weights_neg",
          f"No negative weight for {safe.md(label)}.")
    st.caption(f"{len(of_class)} non-zero weights for {safe.md(label)}. A word's contribution to the logit is its weight "
               "times its feature value (count, log-count or TF-IDF, as configured); word pairs and triples are "
               "their words joined by spaces.")
    word = st.text_input("Search a word or phrase", key="weights_search", placeholder="e.g. boring")
    if word.strip():
        query = word.strip().lower()
        hits = weights[weights["feature"].str.contains(query, regex=False)]
        exact = hits[hits["feature"] == query]
        if hits.empty:
            st.info(f"No feature contains {safe.md(repr(query))}: the student never saw it (or it was pruned).")
        else:
            wide = hits.pivot_table(index="feature", columns="class", values="weight", fill_value=0.0)
            if "teacher_logit" in hits:  # a student that reads the teacher's view of each n-gram shows it beside
                alone = hits.pivot_table(index="feature", columns="class", values="teacher_logit", fill_value=0.0)
                wide = wide.join(alone.add_prefix("teacher alone: "))
            order = list(exact["feature"].unique()) + [f for f in wide.index if f not in set(exact["feature"])]
            st.dataframe(wide.loc[order].reset_index(), hide_index=True, width="stretch")

    st.subheader("Student weights vs teacher attributions")
    st.caption("Does the student weigh a word the way the teacher uses it? The teacher explains a sample of the "
               "run's test texts; each word's mean attribution towards the class is set against the student's "
               "weight for it.")
    cols = st.columns([3, 2])
    n_texts = cols[0].slider("Test texts explained by the teacher", min_value=5, max_value=200, value=20, step=5,
                             key="weights_sample",
                             help="The teacher's mean attribution per word is computed over this many test texts "
                                  "(cached: the first computation takes about a second per text on a CPU).")
    method = cols[1].selectbox("Method", ["integrated_gradients", "gradient_x_input"], key="weights_method",
                               help="Integrated gradients is the principled choice (its scores add up to the "
                                    "logit); gradient x input is faster but noisier for the teacher.")
    texts, _ = state.test_split(key)
    if not texts:
        st.caption("This run stores no test texts to explain.")
        return
    params = (key, student, int(n_texts), method, label)
    if st.button("Compare with the teacher", key="weights_compare_button"):
        st.session_state["weights_compare"] = params
    if st.session_state.get("weights_compare") != params:
        st.caption(f"Click to explain {min(n_texts, len(texts))} test texts with the teacher and compare.")
        return
    state.full_run(key)
    with st.spinner(f"Explaining {min(n_texts, len(texts))} texts with the teacher…"):
        result = state.weights_vs_attribution(key, student, n_texts, method, label)
    frame, rho = result
    if frame.empty:
        st.info("No word is both a student feature and in the explained texts.")
        return
    rho_text = "undefined (fewer than 2 shared words)" if rho is None or (isinstance(rho, float) and math.isnan(rho)) \
        else f"{rho:.3f}"
    st.metric("Spearman rank correlation", rho_text,
              help="Rank correlation between the student's weight of a word and the teacher's mean attribution "
                   f"of that word towards {safe.md(label)}, over the words they share.")
    st.plotly_chart(charts.weights_scatter(frame, "student_weight", "teacher_mean_attribution", "word",
                                           f"Each point is a word ({len(frame)} words, class {label})"),
                    width="stretch", key="weights_scatter")


def _mlp_section(key: state.RunKey, run, mlps: list[str]) -> None:
    st.subheader("MLP student: global importances")
    student, label, top = _pick(run, "MLP", mlps, "weights_mlp", 15)
    state.full_run(key)
    importance = state.mlp_importance(key, student, 2000)
    of_class = importance[importance["class"] == label]
    if of_class.empty:
        st.info("No feature of this student occurs in the run's test texts.")
        return
    left, right = st.columns(2)
    positive, negative = _strongest(of_class, "importance", top)
    _bars(left, positive, lambda f: charts.importance_bars(f, f"Towards {label}"), "mlp_pos",
          f"No feature pushes towards {safe.md(label)}.")
    _bars(right, negative, lambda f: charts.importance_bars(f, f"Against {label}"), "mlp_neg",
          f"No feature pushes against {safe.md(label)}.")
    st.caption("Importance: a feature's gradient × value for the class logit, averaged over the test texts that "
               "contain it (for a linear model this is exactly weight × value).")


def render() -> None:
    """Draw the run's page as its task's output asks (a label per text, or tags per word)."""
    key = require_run()
    if key is not None:
        draw_for_task(key, {"MulticlassPreds": _draw_labels, "SequenceTags": _draw_tags})


def _draw_labels(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("What the students learned")
    students = run.info.students
    linear = [n for n, entry in students.items() if entry.kind in WEIGHT_TABLE_KINDS]
    mlps = [n for n, entry in students.items() if entry.kind not in WEIGHT_TABLE_KINDS]
    if not linear and not mlps:
        st.info("This run has no linear or MLP student.")
        return
    if linear:
        _linear_section(key, run, linear)
    if mlps:
        _mlp_section(key, run, mlps)


def _draw_tags(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("What the token students learned")
    st.caption("Features are read directly: w=… the word, shape=…, pre/suf=… its first / last letters, w[-1]=… the "
               "word before, first / last. Importance: the mean gradient x value over the test words that have the "
               "feature; for the linear student exactly its weight. A CRF student's terms are its emission "
               "terms: a window feature's weight, and teacher(word)[tag] / teacher(window)[tag] (the teacher's "
               "log-probability of the tag on the word or its window taken alone) as their mean value x weight.")
    types = state.entity_types(key)
    cols = st.columns([2, 2, 1])
    student = cols[0].selectbox("Student", run.student_names, key="token_weights_student")
    kind = cols[1].selectbox("Entity type", types, key="token_weights_type")
    top = int(cols[2].number_input("Top", min_value=5, max_value=50, value=15, step=5, key="token_weights_top"))
    table = state.tag_features(key, student, kind, top)
    left, right = st.columns(2)
    for column, prefix in ((left, "B"), (right, "I")):
        rows = table[table["tag"] == f"{prefix}-{kind}"]
        column.markdown(f"**{safe.md(f'{prefix}-{kind}')}**")
        if rows.empty:
            column.caption("No feature of the test words pushes towards this tag.")
        else:
            column.dataframe(rows.drop(columns="tag"), hide_index=True, width="stretch",
                             column_config={"importance": st.column_config.NumberColumn("importance", format="%.3f")})
    _transitions(key, student)


def _transitions(key: state.RunKey, student: str) -> None:
    """A structured (CRF) student's tag-transition matrix; nothing for a student that tags each word alone."""
    table = state.tag_transitions(key, student)
    if table is None:
        return
    st.subheader("Tag transitions")
    st.caption("The CRF student scores a whole tag path: each word's emission (the terms above) plus the "
               "score of each step from one tag to the next, read here (row: the previous tag or the sentence "
               "start, column: the next tag or the sentence end). Blank cells are steps BIO forbids (an I-x "
               "after O or after another type).")
    st.plotly_chart(charts.transition_heatmap(table, f"Tag transitions of {student}"), width="stretch",
                    key="token_weights_transitions")
