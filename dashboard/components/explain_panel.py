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
            "n_steps", _STEP_CHOICES, value=state.DASHBOARD_IG_STEPS, key=f"{prefix}_n_steps",
            help=f"Integration steps (kdcore's default is {DEFAULT_OPTIONS.get('n_steps')}). "
                 f"{state.DASHBOARD_IG_STEPS} keeps the page interactive on a CPU and converges on typical reviews; when "
                 "it does not, a note under the highlights says so. 'auto' takes the fewest steps within tolerance.")
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

    Returns {model: Explanation} (None when the text is empty or explaining failed).
    """
    if not text.strip():
        st.info("Type or pick a text to see every model's prediction and explanation.")
        return None
    run = state.meta(key)
    state.full_run(key)  # load the models once, outside the cached functions below
    method, target, options = settings
    try:
        with st.spinner("Predicting and explaining with every model…"):
            explanations = state.explain_all(key, text, method, target, options, names)
    except ValueError as err:
        st.error(safe.md(err))
        return None
    # Every Explanation carries its model's class probabilities: no second prediction pass.
    st.plotly_chart(charts.probability_bars({n: e.probs for n, e in explanations.items()}, run.label_names),
                    width="stretch", key=f"{prefix}_probs")
    record = state.trust(key)
    teacher = explanations.get("teacher")
    teacher_class = (int(np.argmax(teacher.probs)),) if teacher is not None else None
    trust_panel.stand_in_badges(state.stand_ins(key, (text,), names, teacher_class) if record else {}, run.path,
                                record is not None)
    first = next(iter(explanations.values()))
    st.markdown(f"**Word attributions** for class **{safe.md(first.target_name)}** "
                f"({heatmap.legend(first.target_name)})", unsafe_allow_html=True)
    st.html(heatmap.highlight_table(explanations, shared_scale=shared_scale))
    st.caption("Colours: each row scaled by its own largest |score| (patterns comparable across models)."
               if not shared_scale else "Colours: one scale for every row (raw magnitudes comparable across models).")
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
    return explanations
