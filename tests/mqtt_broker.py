"""Test helpers: a real Mosquitto on a free port, configured not to drop, and a connector process.

The broker is ``plantcast.testing.mosquitto``'s, shared with the benchmarks; here it skips a
test (fails it in CI) where mosquitto is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plantcast.testing import mosquitto
from plantcast.testing.mosquitto import free_port, wait_for

__all__ = ["Connector", "Mosquitto", "free_port", "make_tls_files", "require_mosquitto", "wait_for"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_mosquitto() -> str:
    if mosquitto.MOSQUITTO is None:
        msg = f"{mosquitto.MISSING}; the MQTT connector tests need a real broker"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return mosquitto.MOSQUITTO


class Mosquitto(mosquitto.Mosquitto):
    """The shared broker, skipped (failed in CI) where mosquitto is not installed."""

    def __init__(self, workdir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        require_mosquitto()
        super().__init__(workdir, port, extra)


class Connector:
    """``plantcast connect mqtt …`` as a child process; its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-c", "from plantcast.cli.main import cli; cli()", "connect", "mqtt"]
        self.proc = subprocess.Popen(
            cmd + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def output(self) -> str:
        return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_subscribed(self, timeout: float = 30) -> None:
        def ready():
            if not self.alive():
                raise AssertionError(f"the connector exited:\n{self.output()}")
            return self.saw("subscribed to")

        wait_for(ready, timeout, "the connector to subscribe")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._reader.join(timeout=5)
        return code


def make_tls_files(workdir: Path, user: str, password: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and a password file."""
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        msg = "openssl and mosquitto_passwd are needed for the TLS test"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    f = {k: workdir / k for k in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")}
    san = workdir / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f["ca.key"],
            "-out",
            f["ca.crt"],
            "-days",
            "1",
            "-subj",
            "/CN=plantcast test CA",
        ],
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f["server.key"],
            "-out",
            f["server.csr"],
            "-subj",
            "/CN=127.0.0.1",
        ],
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            f["server.csr"],
            "-CA",
            f["ca.crt"],
            "-CAkey",
            f["ca.key"],
            "-CAcreateserial",
            "-out",
            f["server.crt"],
            "-days",
            "1",
            "-extfile",
            san,
        ],
        ["mosquitto_passwd", "-b", "-c", workdir / "passwd", user, password],
    ]
    for step in steps:
        subprocess.run([str(x) for x in step], check=True, capture_output=True)
    return {
        "ca": f["ca.crt"],
        "cert": f["server.crt"],
        "key": f["server.key"],
        "passwd": workdir / "passwd",
    }
