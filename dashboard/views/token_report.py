"""Report of a token run: the self-contained HTML page and its JSON, built by kdcore.tasks.token.report."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import state

__all__ = ["render"]


@st.cache_data(show_spinner="Tagging the example sentences and writing the report…", max_entries=8)
def _documents(key: state.RunKey, n_examples: int) -> tuple[str, str]:
    from kdcore.tasks.token.report import build_token_report, render_token_html

    report = build_token_report(state.full_run(key), n_examples=n_examples)
    return render_token_html(report), json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)


def render(key: state.RunKey) -> None:
    run = state.meta(key)
    st.title("Report")
    st.caption("One HTML file with no script and no external resource, and the JSON it is rendered from: model "
               "card, each model's per-type table, the distilled-minus-twin margins, definitions, hashes, versions, "
               "configurations and example sentences tagged by every model.")
    n_examples = int(st.number_input("Example sentences", min_value=0, max_value=20, value=3, key="token_report_n"))
    html_text, json_text = _documents(key, n_examples)
    left, right = st.columns(2)
    left.download_button("Download HTML report", html_text.encode("utf-8"), file_name=f"{run.name}-report.html",
                         mime="text/html", key="token_report_html", type="primary", on_click="ignore")
    right.download_button("Download JSON", json_text.encode("utf-8"), file_name=f"{run.name}-report.json",
                          mime="application/json", key="token_report_json", on_click="ignore")
    with st.expander("Preview", expanded=True):
        st.iframe(html_text, height=700)
