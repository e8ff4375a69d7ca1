"""``plantcast dashboard`` stops its Streamlit server on SIGTERM: the port is freed and no server
of that port is left behind (the CLI execs into the server rather than starting a child)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require_module

require_module("streamlit", "the dashboard tests need Streamlit")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _servers_of(port: int) -> list[int]:
    """Pids whose command line runs Streamlit on ``port`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv)
        if b"streamlit" in text and str(port).encode() in argv:
            found.append(int(entry.name))
    return found


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited early: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(
        f"no answer on port {port} within {timeout:.0f}s: {log.read_text()[-2000:]}"
    )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find servers")
def test_sigterm_stops_the_server_and_frees_the_port(sqlite_url, tmp_path):
    port = _free_port()
    log = tmp_path / "dashboard.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "dashboard", "--port", str(port)],
        env={**os.environ, "PLANTCAST_DATABASE_URL": sqlite_url},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so cleanup can reach anything it might have spawned
    )
    try:
        _wait_healthy(proc, port, log)
        proc.send_signal(signal.SIGTERM)  # to the one process, as a service manager would
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_servers_of(port) or not _port_free(port)):
            time.sleep(0.2)
        assert _servers_of(port) == []
        assert _port_free(port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
