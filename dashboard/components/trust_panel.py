"""The trust curve on screen: the Overview's section and the Explain view's stand-in badges.

Every number comes from kdcore.trust (the record stored with the run, and kdcore.trust.assess for a
text, through :mod:`dashboard.state`); this module only lays them out.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard.components import charts, safe

__all__ = ["trust_section", "entity_trust_section", "stand_in_badges", "missing_note"]


def missing_note(run_path) -> str:
    return ("This run has no trust curve (it was built before kd-lens computed one). Add it with "
            + safe.code(f"python -m kdcore evaluate --run {run_path}") + ".")


def trust_section(record, run_path) -> None:
    """Each student's headline pair (coverage at the target fidelity, in a sentence), the curves and the table."""
    from kdcore.trust import DEFINITIONS

    st.subheader("Where each student stands in for the teacher")
    if record is None:
        st.caption(missing_note(run_path))
        return
    if not record.students:
        st.caption(safe.md(record.note))
        return
    students = list(record.students.items())
    unit = students[0][1].unit
    st.caption(f"{unit.capitalize()} sorted by how sure each student is (its stand-in score, chosen on the "
               f"{record.dev_size} dev {unit}); the curve is measured on the {record.test_size} test {unit}. "
               f"{DEFINITIONS['stand-in score']}")
    columns = st.columns(min(len(students), 4))
    for i, (name, entry) in enumerate(students):
        se = f" ± {entry.coverage_se:.0%}" if math.isfinite(entry.coverage_se) else ""
        columns[i % len(columns)].metric(f"{safe.md(name)}: coverage at {entry.target:.0%} fidelity",
                                         f"{entry.coverage:.0%}{se}",
                                         help=f"{DEFINITIONS['coverage at 95% fidelity']} ± its bootstrap "
                                              "standard error.")
    for _, entry in students:
        st.markdown(f"- {safe.md(entry.headline())}")
    curves = {name: (entry.curve.coverage.tolist(), entry.curve.fidelity.tolist()) for name, entry in students}
    marks = {name: (entry.coverage, entry.fidelity_at_coverage) for name, entry in students
             if entry.fidelity_at_coverage is not None}
    st.plotly_chart(charts.trust_curves(curves, record.target, marks), width="stretch", key="trust_curves")
    table = pd.DataFrame(record.summary())
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
        c: st.column_config.NumberColumn(c, format="%.3f") for c in table.select_dtypes("number").columns})


def entity_trust_section(record) -> None:
    """A tagging run's stand-in per entity (kdcore.tasks.token.entity_trust): each student's coverage at the
    target entity agreement with its interval, the headlines, and the curves of entity agreement against
    coverage."""
    from kdcore.intervals import format_interval
    from kdcore.tasks.token.entity_trust import ENTITY_DEFINITIONS, entity_records

    entries = entity_records(record)
    if not entries:
        return
    target = next(iter(entries.values())).target
    st.markdown("**Per entity**: each entity a student predicts, sorted by its calibrated p(agrees with the "
                "teacher), surest first; entity agreement is the share of the kept entities the teacher has too.",
                help=" ".join(ENTITY_DEFINITIONS.values()))
    columns = st.columns(min(len(entries), 4))
    for i, (name, entry) in enumerate(entries.items()):
        columns[i % len(columns)].metric(f"{safe.md(name)}: coverage at {target:.0%} entity agreement",
                                         f"{entry.coverage:.0%}",
                                         help=f"95% interval {format_interval(entry.coverage_ci) or 'not computed'} "
                                              f"(resampling the test sentences). Test Brier score of p(agrees) "
                                              f"{entry.test_brier:.3f}; mean p(agrees) {entry.test_mean_probability:.2f} "
                                              f"against {entry.test_agreement:.2f} observed.")
    for entry in entries.values():
        st.markdown(f"- {safe.md(entry.headline())}")
    curves = {name: (e.curve.coverage.tolist(), e.curve.fidelity.tolist()) for name, e in entries.items()}
    marks = {name: (e.coverage, e.agreement_at_coverage) for name, e in entries.items()
             if e.agreement_at_coverage is not None}
    st.plotly_chart(charts.trust_curves(curves, target, marks, unit="entities", measure="entity agreement",
                                        title="Trust curves per entity"), width="stretch", key="entity_trust_curves")


def stand_in_badges(verdicts: dict, run_path, has_record: bool) -> None:
    """One badge per student for the text: likely / unlikely stand-in, with the calibrated p(agrees); a
    student seen to give another class than the teacher here (kdcore's StandIn.agrees) is shown as such,
    whatever its p(agrees) predicted."""
    from kdcore.trust import DEFINITIONS

    if not has_record:
        st.caption(missing_note(run_path))
        return
    if not verdicts:
        return
    badges = []
    for name, (verdict, *_) in verdicts.items():
        if verdict.agrees is False:
            badges.append(f":red-badge[:material/cancel: {safe.md(name)}: {verdict.label} "
                          f"(its p(agrees) was {verdict.probability:.2f})]")
            continue
        color, icon = ("green", ":material/verified:") if verdict.likely else ("orange", ":material/help:")
        text = f"{safe.md(name)}: {verdict.label} · p(agrees) {verdict.probability:.2f}"
        badges.append(f":{color}-badge[{icon} {text}]")
    # One line of badges that wraps, so that no badge is cut short however many students there are.
    st.markdown("**Stands in for the teacher here?** " + " ".join(badges),
                help=f"{DEFINITIONS['likely stand-in']} {DEFINITIONS['p(agrees)']}")
