"""Dashboard: the live Streamlit page. Only this package imports Streamlit.

``app.py`` is the Streamlit script; :func:`streamlit_command` builds the command that serves it.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the dashboard on ``host:port``, headless."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        # An operator's page, not a development server: no "Deploy" button, no developer menu.
        "--client.toolbarMode",
        "viewer",
    ]
