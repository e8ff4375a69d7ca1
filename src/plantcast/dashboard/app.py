"""The dashboard: `plantcast dashboard` serves this Streamlit script. It lays out the pages
(``st.navigation``): the plant overview (the default), one sensor's live page, the alerts
inbox and one asset's view; each page is a script under ``screens/``."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.dashboard.identity import logged_in, login_required, person

SCREENS = Path(__file__).with_name("screens")


def _login_gate() -> None:
    """With OpenID Connect configured: nothing but a login button until logged in; then who
    it is in the sidebar, with a way out. A disabled user gets no further."""
    if not login_required():
        return
    if not logged_in():
        st.title("plantcast")
        st.write("This page requires login.")
        st.button("Log in", key="login", type="primary", on_click=st.login)
        st.stop()
    try:
        who = person()
    except PlantcastError as exc:
        st.error(str(exc))
        st.stop()
    st.sidebar.caption(f"Logged in as **{who.name}** ({who.role or 'disabled'})")
    if st.sidebar.button("Log out", key="logout"):
        st.logout()
    if who.role is None:
        st.error(f"{who.name} is disabled: ask an admin.")
        st.stop()


def main() -> None:
    st.set_page_config(page_title="plantcast", layout="wide")
    _login_gate()
    pages = [
        st.Page(
            SCREENS / "overview.py", title="Plant overview", icon=":material/factory:", default=True
        ),
        st.Page(SCREENS / "sensor.py", title="Sensor", icon=":material/show_chart:"),
        st.Page(SCREENS / "inbox.py", title="Alerts inbox", icon=":material/notifications:"),
        st.Page(SCREENS / "asset.py", title="Asset", icon=":material/precision_manufacturing:"),
        st.Page(SCREENS / "silences.py", title="Silences", icon=":material/notifications_paused:"),
        st.Page(SCREENS / "people.py", title="Users and keys", icon=":material/group:"),
        st.Page(SCREENS / "audit.py", title="Audit log", icon=":material/history:"),
    ]
    page = st.navigation(pages)
    if api_url := os.environ.get("PLANTCAST_API_URL"):  # set by `plantcast demo`
        st.caption(f"REST API at {api_url} ([docs]({api_url}/docs))")
    page.run()


main()
