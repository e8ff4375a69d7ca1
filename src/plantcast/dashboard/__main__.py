"""``python -m plantcast.dashboard --host H --port P``: serve the page (the CLI runs this).

Beyond 127.0.0.1 the page requires login: without ``PLANTCAST_OIDC_*`` (plantcast.core.oidc)
it refuses to start and says why. With them it writes the provider's settings to a private
secrets file (0600, in a folder of its own, removed when the page stops) for ``st.login``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from plantcast.core.errors import InputError
from plantcast.core.oidc import oidc_settings, refuse_open_bind, secrets_toml
from plantcast.dashboard import streamlit_command


def _serve_with_secrets(command: list[str], toml: str) -> int:
    """Run Streamlit with a private secrets file; signals are passed on to it."""
    folder = tempfile.mkdtemp(prefix="plantcast-page-")  # 0700
    try:
        path = os.path.join(folder, "secrets.toml")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(toml)
        child = subprocess.Popen([*command, "--secrets.files", path])

        def forward(signum, _frame):
            child.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, forward)
        return child.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plantcast.dashboard")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    if why := refuse_open_bind(args.host):
        print(f"plantcast dashboard: {why}", file=sys.stderr)
        sys.exit(2)
    try:
        settings = oidc_settings(args.host, args.port)
    except InputError as exc:
        print(f"plantcast dashboard: {exc}", file=sys.stderr)
        sys.exit(2)
    command = streamlit_command(args.host, args.port)
    if settings is None:
        # Become the Streamlit server: signals from whoever started us reach it directly.
        os.execv(command[0], command)
    sys.exit(_serve_with_secrets(command, secrets_toml(settings)))


if __name__ == "__main__":
    main(sys.argv[1:])
