"""The app's pages by title (lower case), filled by dashboard/app.py, so a view can send the user to another page
(``st.switch_page`` needs the page object of a function page). Empty when a view runs on its own.

A widget that leads to another page asks for it from its callback (:func:`request`); the app switches in the
next full run (:func:`follow_request`), never from inside a fragment: a fragment that polls with ``run_every``
keeps its browser timer until the new page's session reaches the browser, and an auto-rerun of it sent in that
window interrupts the new page's run, which then stays blank.
"""

from __future__ import annotations

import importlib
from typing import Callable

import streamlit as st

__all__ = ["PAGES", "register", "request", "follow_request", "lazy_view"]

PAGES: dict[str, st.Page] = {}
REQUEST_KEY = "kdlens_switch_to"


def register(pages: list[st.Page]) -> None:
    """Make ``pages`` the app's pages (a page left out, e.g. Distill in review mode, is no longer found)."""
    titles = {page.title.lower(): page for page in pages}
    for stale in set(PAGES) - set(titles):
        PAGES.pop(stale, None)
    PAGES.update(titles)


def lazy_view(view: str) -> Callable[[], None]:
    """The page function of ``dashboard.views.<view>``, importing the module on the page's first run (so the
    first page shown loads only what it needs: torch, for one, comes with the pages that explain or train)."""

    def render() -> None:
        importlib.import_module(f"dashboard.views.{view}").render()

    render.__name__ = render.__qualname__ = f"render_{view}"
    return render


def request(title: str) -> None:
    """Callback: go to the page ``title`` (e.g. "overview") in the full run that follows."""
    st.session_state[REQUEST_KEY] = title


def follow_request() -> None:
    """Switch to the page a callback asked for (once); call it in the app's full run, after ``st.navigation``."""
    title = st.session_state.pop(REQUEST_KEY, None)
    if title and title in PAGES:
        st.switch_page(PAGES[title])

