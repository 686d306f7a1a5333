"""kd-lens dashboard: `streamlit run dashboard/app.py` (runs folder: $KDLENS_RUNS_DIR or ./runs).

For reviewers: `streamlit run dashboard/app.py -- --review` (published runs and reports only; see
dashboard/access.py). This file only sets the page up and routes; every view is a function in dashboard/views/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import access, navigation  # noqa: E402
from dashboard.components.sidebar import run_picker  # noqa: E402

st.set_page_config(page_title="kd-lens", page_icon=":material/center_focus_strong:", layout="wide")
if not access.signed_in():
    st.stop()  # a signed-out visitor sees the sign-in button and nothing else
review = access.review_mode()
logo = ROOT / "assets" / "logo.svg"
if logo.is_file():
    st.logo(str(logo))
run_picker()
access.account_box()
lazy = navigation.lazy_view  # each view's module (and what it imports) is loaded when its page is first shown
pages = [
    st.Page(lazy("overview"), title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
    st.Page(lazy("explain"), title="Explain", icon=":material/text_select_start:", url_path="explain"),
    st.Page(lazy("batch"), title="Batch", icon=":material/table_view:", url_path="batch"),
    st.Page(lazy("weights"), title="Weights", icon=":material/bar_chart:", url_path="weights"),
    st.Page(lazy("audit"), title="Audit", icon=":material/fact_check:", url_path="audit"),
    None if review else st.Page(lazy("distill"), title="Distill", icon=":material/model_training:", url_path="distill"),
    st.Page(lazy("report"), title="Report", icon=":material/description:", url_path="report"),
]
pages = [page for page in pages if page is not None]  # review mode: no Distill view
navigation.register(pages)
chosen = st.navigation(pages)
navigation.follow_request()  # a page a callback asked for, switched to in this full run (not in a fragment)
chosen.run()
