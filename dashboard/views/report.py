"""Report: a self-contained HTML page (and its JSON) of the run, built by kdcore.report."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import safe
from dashboard.components.sidebar import require_run

__all__ = ["render"]


def render() -> None:
    key = require_run(token_view="token_report")  # a token run has its own screen
    if key is None:
        return
    run = state.meta(key)
    st.title("Report")
    st.caption("One HTML file with no script and no external resource (it opens offline and in an archive), and the "
               "JSON it is rendered from: model card with every definition, data and weight hashes, package "
               "versions, configurations, and the example explanations chosen below.")
    from kdcore.attribution import METHOD_NAMES, METHODS

    test_texts, _ = state.test_split(key)
    options = list(dict.fromkeys([*test_texts[:50], *state.example_texts()]))
    examples = st.multiselect("Example texts to explain", options, default=options[:3], key="report_examples",
                              help="Each is explained by the teacher and every student.")
    extra = st.text_area("More examples (one per line)", key="report_extra", height=80)
    examples += [line.strip() for line in extra.splitlines() if line.strip()]
    method = st.selectbox("Attribution method", METHODS, format_func=lambda m: METHOD_NAMES.get(m, m),
                          key="report_method")
    if not st.button("Build the report", type="primary", key="report_build") and \
            st.session_state.get("report_built") != (key, tuple(examples), method):
        return
    state.full_run(key)
    with st.spinner("Explaining the examples and writing the report…"):
        html_text, json_text = state.report_documents(key, tuple(examples), method)
    st.session_state["report_built"] = (key, tuple(examples), method)
    left, right = st.columns(2)
    left.download_button("Download HTML report", html_text.encode("utf-8"), file_name=f"{run.name}-report.html",
                         mime="text/html", key="report_download_html", type="primary", on_click="ignore")
    right.download_button("Download JSON", json_text.encode("utf-8"), file_name=f"{run.name}-report.json",
                          mime="application/json", key="report_download_json", on_click="ignore")
    st.caption(f"HTML {len(html_text) / 1024:.0f} kB · JSON {len(json_text) / 1024:.0f} kB · "
               "or from a terminal: " + safe.code(f"python -m kdcore report --run {run.path} --out report.html"))
    with st.expander("Preview", expanded=True):
        # Safe to frame: every text in the report is escaped and its CSP forbids any script.
        st.iframe(html_text, height=700)
