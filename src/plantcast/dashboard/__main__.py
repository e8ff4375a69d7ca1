"""``python -m plantcast.dashboard --host H --port P``: serve the page (the CLI runs this)."""

from __future__ import annotations

import argparse
import os
import sys

from plantcast.dashboard import streamlit_command


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plantcast.dashboard")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    command = streamlit_command(args.host, args.port)
    # Become the Streamlit server: signals from whoever started us reach it directly.
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
