"""Report: a self-contained HTML page (and its JSON) of the run, built by kdcore.report."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import state
from dashboard.components import safe
from dashboard.components.sidebar import draw_for_task, require_run

__all__ = ["render"]


@st.cache_data(show_spinner="Printing the PDF with Chromium…", max_entries=4)
def _pdf(html_text: str) -> bytes:
    from kdcore.audit.pdf import html_to_pdf

    return html_to_pdf(html_text)


def _pdf_button(name: str, html_text: str) -> None:
    """The report printed to PDF (A4) by the real browser; a note with the fix when it is not installed."""
    from kdcore.audit.pdf import PdfError

    try:
        pdf = _pdf(html_text)
    except PdfError as err:
        st.caption("No PDF here:")
        st.text(str(err))
        return
    st.download_button("Download PDF", pdf, file_name=f"{name}-report.pdf", mime="application/pdf",
                       key="report_download_pdf", on_click="ignore")


def render() -> None:
    """Draw the run's page as its task's output asks (a label per text, or tags per word)."""
    key = require_run()
    if key is not None:
        draw_for_task(key, {"MulticlassPreds": _draw_labels, "SequenceTags": _draw_tags})


def _draw_labels(key: state.RunKey) -> None:
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
    _pdf_button(run.name, html_text)
    st.caption(f"HTML {len(html_text) / 1024:.0f} kB · JSON {len(json_text) / 1024:.0f} kB · "
               "or from a terminal: " + safe.code(f"python -m kdcore report --run {run.path} --out report.html"))
    with st.expander("Preview", expanded=True):
        # Safe to frame: every text in the report is escaped and its CSP forbids any script.
        st.iframe(html_text, height=700)


@st.cache_data(show_spinner="Tagging the example sentences and writing the report…", max_entries=8)
def _tag_documents(key: state.RunKey, n_examples: int) -> tuple[str, str]:
    from kdcore.tasks.token.report import build_token_report, render_token_html

    report = build_token_report(state.full_run(key), n_examples=n_examples)
    return render_token_html(report), json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)


def _draw_tags(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("Report")
    st.caption("One HTML file with no script and no external resource, and the JSON it is rendered from: model "
               "card, each model's per-type table, the distilled-minus-twin margins, definitions, hashes, versions, "
               "configurations and example sentences tagged by every model.")
    n_examples = int(st.number_input("Example sentences", min_value=0, max_value=20, value=3, key="token_report_n"))
    html_text, json_text = _tag_documents(key, n_examples)
    left, right = st.columns(2)
    left.download_button("Download HTML report", html_text.encode("utf-8"), file_name=f"{run.name}-report.html",
                         mime="text/html", key="token_report_html", type="primary", on_click="ignore")
    right.download_button("Download JSON", json_text.encode("utf-8"), file_name=f"{run.name}-report.json",
                          mime="application/json", key="token_report_json", on_click="ignore")
    with st.expander("Preview", expanded=True):
        st.iframe(html_text, height=700)
