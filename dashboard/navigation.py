"""The app's pages by title (lower case), filled by dashboard/app.py, so a view can send the user to another page
(``st.switch_page`` needs the page object of a function page). Empty when a view runs on its own."""

from __future__ import annotations

import streamlit as st

PAGES: dict[str, st.Page] = {}


def go_to(title: str) -> None:
    """Switch to the page ``title`` (e.g. "overview"); rerun the whole app when it is not registered."""
    page = PAGES.get(title)
    if page is not None:
        st.switch_page(page)
    st.rerun(scope="app")
