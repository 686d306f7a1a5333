"""Who may see what: review mode (published runs only, read only) and the optional sign-in.

* Review mode, for sharing the dashboard with reviewers: ``streamlit run dashboard/app.py -- --review``
  (or ``KDLENS_REVIEW=1``). It shows the published runs of the runs folder and their reports; there is no
  Distill view, no folder box, no background job, and a run folder given any other way is refused.
* Sign-in: when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's OpenID Connect login,
  ``st.login``), a signed-out visitor sees only a *Sign in* button.
"""

from __future__ import annotations

import os
import sys

import streamlit as st

__all__ = ["REVIEW_FLAG", "REVIEW_ENV", "review_mode", "auth_configured", "signed_in"]

REVIEW_FLAG = "--review"
REVIEW_ENV = "KDLENS_REVIEW"


def review_mode() -> bool:
    """True when the app was started for reviewers (``-- --review`` after the script, or ``KDLENS_REVIEW=1``)."""
    return REVIEW_FLAG in sys.argv[1:] or os.environ.get(REVIEW_ENV, "").strip().lower() in ("1", "true", "yes")


def auth_configured() -> bool:
    """True when secrets.toml configures Streamlit's OpenID Connect login (an ``[auth]`` section)."""
    try:
        return bool(st.secrets.load_if_toml_exists()) and "auth" in st.secrets
    except (FileNotFoundError, OSError, ValueError):
        return False


def signed_in() -> bool:
    """True when the visitor may see the app: no login configured, or signed in. A signed-out visitor is shown
    only the sign-in button (and nothing else is drawn: the caller stops)."""
    if not auth_configured():
        return True
    if st.user.is_logged_in:
        return True
    st.title("kd-lens")
    st.write("Sign in to see the runs.")
    if st.button("Sign in", type="primary", key="kdlens_sign_in"):
        st.login()
    return False


def account_box() -> None:
    """In the sidebar, for a signed-in visitor: who they are, and *Sign out*."""
    if not auth_configured() or not st.user.is_logged_in:
        return
    from dashboard.components import safe

    who = st.user.get("email") or st.user.get("name") or st.user.get("sub") or "signed in"
    st.sidebar.caption(f"Signed in as {safe.md(who)}")
    if st.sidebar.button("Sign out", key="kdlens_sign_out"):
        st.logout()
