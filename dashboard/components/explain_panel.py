"""The explanation of one text by every model: method controls and the rendered panel.

Shared by the Explain view and the Batch view (which explains a picked row). Every
number comes from kdcore (predictions, attribution, agreement, deletion curves) through
the cached functions of :mod:`dashboard.state`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import charts, heatmap, safe, trust_panel

__all__ = ["ExplainSettings", "method_controls", "explain_panel"]

AUTO_TARGET = "the teacher's prediction"
_STEP_CHOICES = (8, 16, 32, 50, 64, 128, "auto")
FIRST_PASS = "teacher, first pass (gradient × input)"


class ExplainSettings(NamedTuple):
    """What to explain: the method, the target class (None: the teacher's prediction), options."""

    method: str
    target: str | None
    options: tuple[tuple[str, Any], ...]


def method_controls(label_names: list[str], prefix: str) -> ExplainSettings:
    """Method picker, its options and the target class; returns the settings."""
    from kdcore.attribution import DEFAULT_OPTIONS, METHOD_NAMES, METHODS

    cols = st.columns([2, 2, 2])
    method = cols[0].selectbox("Attribution method", METHODS, format_func=lambda m: METHOD_NAMES.get(m, m),
                               key=f"{prefix}_method",
                               help="The same method explains every model; scores attribute the target class logit.")
    target_choice = cols[1].selectbox("Target class", [AUTO_TARGET, *label_names], key=f"{prefix}_target",
                                      help="The class whose score is explained (default: the class the teacher "
                                           "predicts), the same for every model.")
    options: dict[str, Any] = {}
    if method == "integrated_gradients":
        options["n_steps"] = cols[2].select_slider(
            "n_steps", _STEP_CHOICES, value=state.EXPLAIN_IG_STEPS, key=f"{prefix}_n_steps",
            help=f"Integration steps (kdcore's default is {DEFAULT_OPTIONS.get('n_steps')}). 'auto' (the default "
                 "here) takes the fewest nested points within the convergence tolerance, 17 for most texts, which "
                 "keeps the page interactive on a CPU; a fixed count that does not converge gets a note under the "
                 "highlights.")
    elif method in ("lime", "shapley_sampling"):
        default = 200 if method == "lime" else 25
        options["n_samples"] = int(cols[2].number_input("n_samples", min_value=1, max_value=5000, value=default,
                                                        step=10 if method == "lime" else 5,
                                                        key=f"{prefix}_n_samples_{method}"))
    target = None if target_choice == AUTO_TARGET else target_choice
    return ExplainSettings(method, target, tuple(sorted(options.items())))


def _curve_xy(curve) -> tuple[list[float], list[float]]:
    """kdcore's deletion curve ``(fractions, probs)`` as two lists."""
    fractions, probs = curve
    return np.asarray(fractions, float).tolist(), np.asarray(probs, float).tolist()


def explain_panel(key: state.RunKey, text: str, settings: ExplainSettings, names: tuple[str, ...] | None = None,
                  prefix: str = "explain", shared_scale: bool = False) -> dict | None:
    """Predictions, word highlights, agreement and deletion curves of ``text`` by every model.

    Drawn in stages: every model's prediction and every student's attribution at once, then the
    teacher's attribution as it is computed (its progress window group by window group), then the
    comparisons. Returns {model: Explanation} (None when the text is empty or explaining failed).
    """
    if not text.strip():
        st.info("Type or pick a text to see every model's prediction and explanation.")
        return None
    run = state.meta(key)
    state.full_run(key)  # load the models once, outside the cached functions below
    method, target, options = settings
    every = tuple(n for n in state.models(key) if names is None or n in names)
    students = tuple(n for n in every if n != "teacher")
    try:
        with st.spinner("Predicting and explaining with every student…"):
            if "teacher" in every:
                teacher_probs = state.teacher_probs(key, text)
                target = target or state.teacher_class_name(key, text)
            explanations = state.student_explanations(key, text, method, target, options, students) if students \
                else {}
    except ValueError as err:
        st.error(safe.md(err))
        return None
    probs = {**({"teacher": teacher_probs} if "teacher" in every else {}),
             **{n: e.probs for n, e in explanations.items()}}
    st.plotly_chart(charts.probability_bars(probs, run.label_names), width="stretch", key=f"{prefix}_probs")
    record = state.trust(key)
    teacher_class = (int(np.argmax(teacher_probs)),) if "teacher" in every else None
    trust_panel.stand_in_badges(state.stand_ins(key, (text,), names, teacher_class) if record else {}, run.path,
                                record is not None)
    target_name = target or _first_target(explanations)
    st.markdown(f"**Word attributions** for class **{safe.md(target_name)}** ({heatmap.legend(target_name)})",
                unsafe_allow_html=True)
    table = st.empty()
    if explanations:
        table.html(heatmap.highlight_table(explanations, shared_scale=shared_scale))
    if "teacher" in every:
        try:
            _first_pass(key, text, settings._replace(target=target), table, explanations, shared_scale)
            teacher = _teacher_explanation(key, text, settings._replace(target=target))
        except ValueError as err:
            st.error(safe.md(err))
            return None
        explanations = {"teacher": teacher, **explanations}
        table.html(heatmap.highlight_table(explanations, shared_scale=shared_scale))
    first = next(iter(explanations.values()))
    st.caption("Colours: each row scaled by its own largest |score| (patterns comparable across models)."
               if not shared_scale else "Colours: one scale for every row (raw magnitudes comparable across models).")
    _comparisons(key, text, settings._replace(target=target), names, explanations, first, prefix)
    return explanations


def _first_pass(key: state.RunKey, text: str, settings: ExplainSettings, table, explanations: dict,
                shared_scale: bool) -> None:
    """For a text of several teacher windows explained by integrated gradients: the teacher's gradient x input
    (one forward and backward pass a window), drawn in a row labelled as such while integrated gradients run."""
    method, target, _ = settings
    if method != "integrated_gradients" or state.teacher_windows(key, text) < 2:
        return
    quick = state.teacher_explanation(key, text, "gradient_x_input", target, ())
    table.html(heatmap.highlight_table({FIRST_PASS: quick, **explanations}, shared_scale=shared_scale))


def _first_target(explanations: dict) -> str:
    return next(iter(explanations.values())).target_name


def _teacher_explanation(key: state.RunKey, text: str, settings: ExplainSettings):
    """The teacher's explanation, its progress drawn while it is computed, its convergence delta after."""
    from kdcore.attribution import METHOD_NAMES

    method, target, options = settings
    slot = st.empty()
    what = f"The teacher's {METHOD_NAMES.get(method, method).lower()}"

    def progress(done: int, total: int) -> None:
        # A caption as well as the bar: the caption is drawn at once, the bar's code loads on its first use.
        with slot.container():
            st.caption(f"{what}: {done} of {total} window{'s' * (total != 1)} done…")
            st.progress(done / max(total, 1))

    teacher = state.teacher_explanation(key, text, method, target, options, progress=progress)
    if teacher.convergence_delta is None:
        slot.empty()
    else:
        steps = dict(options).get("n_steps")
        slot.caption(f"{what}: convergence delta {teacher.convergence_delta:+.3g} (the scores' sum minus the "
                     f"target logit's rise from the baseline; n_steps {safe.md(steps)}, a note below when it "
                     "exceeds the tolerance).")
    return teacher


def _comparisons(key: state.RunKey, text: str, settings: ExplainSettings, names, explanations: dict, first,
                 prefix: str) -> None:
    """Notes, raw scores, agreement with the teacher and deletion curves."""
    method, target, options = settings
    notes = sorted({f"{name}: {w}" for name, e in explanations.items() for w in e.warnings})
    long_text = [n for n in notes if "window" in n]
    if long_text:
        st.info("This text is longer than the teacher's window, so it is explained window by window. " +
                safe.md(" ".join(long_text)))
    for note in notes:
        if note not in long_text:
            st.caption(f"Note · {safe.md(note)}")
    with st.expander("Raw word scores"):
        table = pd.DataFrame({"word": first.words, **{n: e.scores for n, e in explanations.items()}})
        st.dataframe(table, hide_index=False, width="stretch")

    agree = state.agreement_frame(key, text, method, target, options, names)
    left, right = st.columns([1, 1])
    with left:
        st.markdown("**Agreement with the teacher** (same method, same words)")
        if agree.empty:
            st.caption("Include the teacher to compare students with it.")
        else:
            st.dataframe(agree, hide_index=True, width="stretch", column_config={
                c: st.column_config.NumberColumn(c, format="%.3f")
                for c in ("spearman", "kendall", "top_k_overlap", "sign_agreement") if c in agree.columns})
    with right:
        curves = state.deletion_curves(key, text, method, target, options, names)
        if curves:
            xy = {name: _curve_xy(curve) for name, curve in curves.items()}
            st.plotly_chart(charts.deletion_chart(xy, first.target_name), width="stretch", key=f"{prefix}_deletion")
