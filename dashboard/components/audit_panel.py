"""Overview panel: the saved audit's worst slices per student and its certified thresholds, in two tables."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kdcore.intervals import format_interval

__all__ = ["audit_section"]


def audit_section(run) -> None:
    """The worst slices and certified thresholds of ``run``'s saved audit; a note on how to get one otherwise."""
    from kdcore.audit import load_audit

    st.subheader("Where each student stands in worst")
    audit = load_audit(run)
    if audit is None:
        st.caption("No audit saved with this run: the Audit page, or `python -m kdcore audit`, slices the test split, "
                   "probes it with edits and certifies a stand-in threshold.")
        return
    rows = [{"student": name, "slice": w["slice"], "n": w["n"], "fidelity": w["fidelity"],
             "95% CI": format_interval(w["ci"]), "on all texts": w["overall"]}
            for name, worst in audit["worst"].items() for w in worst[:3]]
    st.dataframe(pd.DataFrame(rows, columns=["student", "slice", "n", "fidelity", "95% CI", "on all texts"]),
                 hide_index=True, width="stretch", key="overview_worst_slices")
    certified = [{"student": c["student"], "certified threshold": c["threshold"],
                  "test coverage": c["test"]["coverage"], "fidelity routed": c["test"]["fidelity"],
                  "95% CI": format_interval(c["test"]["ci"])} for c in audit.get("certified", {}).values()]
    if certified:
        target = next(iter(audit["certified"].values()))["target"]
        st.caption(f"Certified stand-in thresholds (fidelity {target:.2f} on the texts a student answers, chosen on dev by fixed-sequence testing; measured on test):")
        st.dataframe(pd.DataFrame(certified), hide_index=True, width="stretch", key="overview_certified")
