"""A page's lower sections as tabs that run only when opened.

The first page draws what a reviewer reads first (the run's heading and model card) and one
section; every other section's content is computed and sent only when its tab is picked
(Streamlit's stateful tabs, ``on_change="rerun"``: a tab's ``.open`` is True for the picked
one only). The browser then loads no chart library and draws no chart before the card is up:
evaluating Plotly's bundle and drawing a page of charts held the model card back by about two
seconds on a first load (``bench/app_latency.py --browser``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import streamlit as st

__all__ = ["lazy_sections", "section"]


def lazy_sections(labels: Sequence[str], key: str) -> dict[str, object]:
    """Tabs named ``labels`` (the first one open by default), keyed ``key`` in the session state
    (set it to a label to open that tab); returns ``{label: tab}`` for :func:`section`."""
    tabs = st.tabs(list(labels), key=key, on_change="rerun")
    return dict(zip(labels, tabs))


@contextmanager
def section(tabs: dict[str, object], label: str) -> Iterator[bool]:
    """Inside tab ``label``; yields whether it is open (draw its content only then)."""
    tab = tabs[label]
    with tab:
        yield bool(getattr(tab, "open", True) is not False)
