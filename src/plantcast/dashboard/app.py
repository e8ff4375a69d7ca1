"""The dashboard: `plantcast dashboard` serves this Streamlit script. It lays out the pages
(``st.navigation``): the plant overview (the default), one sensor's live page and the alerts
inbox; each page is a script under ``screens/``."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

SCREENS = Path(__file__).with_name("screens")


def main() -> None:
    st.set_page_config(page_title="plantcast", layout="wide")
    pages = [
        st.Page(
            SCREENS / "overview.py", title="Plant overview", icon=":material/factory:", default=True
        ),
        st.Page(SCREENS / "sensor.py", title="Sensor", icon=":material/show_chart:"),
        st.Page(SCREENS / "inbox.py", title="Alerts inbox", icon=":material/notifications:"),
    ]
    page = st.navigation(pages)
    if api_url := os.environ.get("PLANTCAST_API_URL"):  # set by `plantcast demo`
        st.caption(f"REST API at {api_url} ([docs]({api_url}/docs))")
    page.run()


main()
