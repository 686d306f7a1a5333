"""Audit: slices (with the user's own), counterfactual probes and the certified stand-in threshold, by kdcore.audit.

Every string from the run (texts, slice and class names, student names) is drawn through dataframes, st.text or
the escaping plotly charts of dashboard.components.audit_charts, never as Markdown or HTML. In review mode
(dashboard/access.py) the page is shown whole but writes nothing into the run: no "Save the audit" button.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import access, state
from dashboard.components import audit_charts
from dashboard.components.sidebar import draw_for_task, require_run
from kdcore.intervals import format_interval

__all__ = ["render", "USER_SLICES_KEY", "PROBE_RESULT_KEY"]

USER_SLICES_KEY = "audit_user_slices"
PROBE_RESULT_KEY = "audit_probe_result"


@st.cache_data(show_spinner="Predicting the test split with every model…", max_entries=4)
def _data(key: state.RunKey):
    from kdcore.audit import audit_data

    return audit_data(state.full_run(key))


def _writable(key: state.RunKey):
    """A Run to write the audit into: the cached models shared, its own manifest (the cached Run is never changed)."""
    from kdcore.runs import Run

    full = state.full_run(key)
    return Run(path=full.path, manifest=dict(full.manifest), metrics=dict(full.metrics), _teacher=full._teacher,
               _students=dict(full._students))


def _slice_frame(rows: list[dict], student: str) -> pd.DataFrame:
    out = []
    for r in rows:
        s, acc = r["students"][student], r.get("accuracy") or {}
        cov = s.get("coverage") or {}
        out.append({"slice": r["name"], "group": r["group"], "n": r["n"], "teacher accuracy": acc.get("value"),
                    "fidelity": s["fidelity"]["value"], "fidelity 95% CI": format_interval(s["fidelity"]["ci"]),
                    "coverage": cov.get("value"), "coverage 95% CI": format_interval(cov.get("ci"))})
    return pd.DataFrame(out)


def _user_slice_builder(data) -> None:
    from kdcore.audit.slices import user_slice

    with st.form("audit_slice_form", clear_on_submit=False):
        st.markdown("**Your own slice**")
        left, middle, right = st.columns([1, 2, 1])
        kinds = ["keyword", "regex"] + (["column"] if data.columns else [])
        kind = left.selectbox("Kind", kinds, key="audit_slice_kind")
        value = middle.text_input("Keyword, regular expression or column value", key="audit_slice_value")
        column = right.selectbox("Column", list(data.columns), key="audit_slice_column") if data.columns else None
        if st.form_submit_button("Add slice"):
            spec = {"kind": kind, "value": value, **({"column": column} if kind == "column" else {})}
            try:
                user_slice(data, **spec)
            except ValueError as err:
                st.error("That slice cannot be built:")
                st.text(str(err))
            else:
                st.session_state.setdefault(USER_SLICES_KEY, []).append(spec)
    if st.session_state.get(USER_SLICES_KEY) and st.button("Clear my slices", key="audit_clear_slices"):
        st.session_state[USER_SLICES_KEY] = []


def _slices_tab(key: state.RunKey) -> None:
    from kdcore.audit import slices_of
    from kdcore.audit.slices import MIN_SUPPORT, slice_table, worst_slices

    data, _ = _data(key)
    student = st.selectbox("Student", list(data.students), key="audit_student")
    _user_slice_builder(data)
    user = st.session_state.get(USER_SLICES_KEY, [])
    slices = slices_of(data, user)
    support = st.number_input("Texts a worst slice needs", 1, max(1, len(data)), min(MIN_SUPPORT, len(data)),
                              key="audit_support")
    worst = worst_slices(data, student, slices, int(support))
    st.subheader("Where it stands in worst")
    if worst:
        st.plotly_chart(audit_charts.slice_fidelity([w["slice"] for w in worst], [w["fidelity"] for w in worst],
                                                    [w["ci"][0] for w in worst], [w["ci"][1] for w in worst],
                                                    worst[0]["overall"], student), key="audit_worst_chart")
        st.dataframe(pd.DataFrame([{"slice": w["slice"], "n": w["n"], "fidelity": w["fidelity"],
                                    "95% CI": format_interval(w["ci"]), "all texts": w["overall"],
                                    "gap lower bound": w["gap_lower"]} for w in worst]), hide_index=True)
    else:
        st.info("No slice is plainly worse than the whole test split (the upper bound of each slice's fidelity "
                "reaches the split's).")
    st.subheader("Every slice")
    table = _slice_frame(slice_table(data, slices), student)
    st.dataframe(table, hide_index=True, key="audit_slices_table")
    if user:
        st.caption("Your slices")
        for row in table.tail(len(user)).itertuples(index=False):
            fidelity = "—" if pd.isna(row.fidelity) else f"{row.fidelity:.3f} ({row[5]})"
            st.text(f"{row.slice}: {row.n} texts, fidelity {fidelity}")


def _probe_of(choice: str, models: dict, texts: list[str], pairs_text: str):
    from kdcore.audit.probes import deletion_probe, negation_probe, swap_probe

    if choice == "negation":
        return negation_probe()
    if choice == "word swaps":
        pairs = []
        for number, line in enumerate(pairs_text.splitlines(), 1):
            parts = [p.strip() for p in line.replace(",", " ").split() if p.strip()]
            if len(parts) == 2:
                pairs.append((parts[0], parts[1]))
            elif parts:
                raise ValueError(f"Line {number}: write two words a line, e.g. 'he,she'.")
        if not pairs:
            raise ValueError("Give at least one pair of words to swap, e.g. 'he,she'.")
        return swap_probe(pairs)
    name = choice.removeprefix("delete top word of ")
    return deletion_probe(models[name], texts, name)


def _probes_tab(key: state.RunKey, saved: dict | None) -> None:
    from kdcore.audit.probes import DEFAULT_SWAPS, run_probe

    data, _ = _data(key)
    run = state.full_run(key)
    models = run.models()
    choices = ["negation", "word swaps", *[f"delete top word of {name}" for name in models]]
    choice = st.selectbox("Probe", choices, key="audit_probe_choice")
    pairs_text = st.text_area("Word pairs to swap (one pair a line)", "\n".join(f"{a},{b}" for a, b in DEFAULT_SWAPS),
                              height=120, key="audit_swaps", disabled=choice != "word swaps")
    count = st.slider("Test texts to edit", 1, len(data), min(100, len(data)), key="audit_probe_texts")
    if st.button("Run probe", type="primary", key="audit_run_probe"):
        texts = data.texts[:count]
        try:
            probe = _probe_of(choice, models, texts, pairs_text)
        except ValueError as err:
            st.error("The probe cannot run:")
            st.text(str(err))
            return
        with st.spinner("Editing the texts and running every model…"):
            st.session_state[PROBE_RESULT_KEY] = run_probe(probe, models, texts, run.label_names)
    result = st.session_state.get(PROBE_RESULT_KEY)
    if result is not None:
        _show_probe(result)
    if saved:
        st.subheader("Probes saved with the run")
        rows = [{"probe": r["probe"], "texts": r["n_applied"], "model": name, "flip rate": m["flip_rate"],
                 "95% CI": format_interval(m["flip_ci"]), "mean change of p(class)": m["mean_change"]}
                for r in saved["probes"]["results"] for name, m in r["models"].items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="audit_saved_probes")


def _show_probe(result: dict) -> None:
    st.text(f"{result['probe']}: applies to {result['n_applied']} of {result['n_texts']} texts")
    if not result["models"]:
        return
    names = list(result["models"])
    ms = [result["models"][n] for n in names]
    st.plotly_chart(audit_charts.flip_rates(names, [m["flip_rate"] for m in ms], [m["flip_ci"][0] for m in ms],
                                            [m["flip_ci"][1] for m in ms], result["probe"]), key="audit_flip_chart")
    st.dataframe(pd.DataFrame([{"model": n, "flips": m["flips"], "flip rate": m["flip_rate"],
                                "95% CI": format_interval(m["flip_ci"]), "mean change of p(class)": m["mean_change"],
                                "change 95% CI": format_interval(m["change_ci"])} for n, m in zip(names, ms)]),
                 hide_index=True, key="audit_probe_table")
    rows = [{"student": name, "edited text": ex["edited"], "words": ", ".join(ex["words"]),
             "teacher": " → ".join(ex["teacher"]), "student's class": " → ".join(ex["student"])}
            for name, only in result["teacher_only_flips"].items() for ex in only["examples"]]
    st.caption("Edits that flip the teacher but not the student (reading the student would mislead here)")
    st.dataframe(pd.DataFrame(rows, columns=["student", "edited text", "words", "teacher", "student's class"]),
                 hide_index=True, key="audit_flip_examples")


def _threshold_tab(key: state.RunKey) -> None:
    from kdcore.audit import certify_run

    _, logits = _data(key)
    left, right = st.columns(2)
    target = left.number_input("Fidelity target", 0.5, 0.999, 0.95, 0.01, key="audit_target")
    confidence = right.number_input("Confidence", 0.5, 0.999, 0.95, 0.01, key="audit_confidence")
    certified = certify_run(state.full_run(key), logits, target, confidence)
    if not certified:
        st.info("This run has no trust record or dev split, on which the threshold is chosen.")
        return
    st.dataframe(pd.DataFrame([{"student": c["student"], "score": c["score"], "threshold": c["threshold"],
                                "dev texts routed": c["routed"], "dev lower bound": c["lower_bound"],
                                "test coverage (teacher passes saved)": c["test"]["coverage"],
                                "test fidelity routed": c["test"]["fidelity"],
                                "95% CI": format_interval(c["test"]["ci"])} for c in certified.values()]),
                 hide_index=True, key="audit_threshold_table")
    st.caption("Fixed-sequence testing on the dev split: with the stated confidence, fidelity on the texts a "
               "student answers is at least the target; elsewhere the hybrid runs the teacher.")


def render() -> None:
    key = require_run()
    if key is None:
        return
    st.title("Audit")
    draw_for_task(key, {"MulticlassPreds": _draw_audit})


def _draw_audit(key) -> None:
    from kdcore.audit import audit_run, load_audit

    run = state.meta(key)
    saved = load_audit(run)
    st.caption("Where each student stands in worst (slices of the test split), what flips the teacher and the "
               "students (counterfactual edits), and a stand-in threshold with a guarantee.")
    review = access.review_mode()  # read only: nothing is written into a published run
    if saved is None:
        st.info("No audit saved with this run yet" + ("." if review else "; the Report includes it once saved."))
    if not review and st.button("Save the audit into the run", key="audit_save",
                                type="primary" if saved is None else "secondary"):
        with st.spinner("Slices, probes and thresholds…"):
            audit_run(_writable(key), user=st.session_state.get(USER_SLICES_KEY, []))
        st.rerun()
    slices, probes, threshold = st.tabs(["Slices", "Probes", "Certified threshold"])
    with slices:
        _slices_tab(key)
    with probes:
        _probes_tab(key, saved)
    with threshold:
        _threshold_tab(key)
