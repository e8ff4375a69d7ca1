"""Test helpers: a real Mosquitto on a free port, configured not to drop, and a connector process.

The broker's config is the one the README's "nothing lost" depends on: persistence on, no
queue limits (``max_queued_messages 0``, ``max_queued_bytes 0``), in-flight bounded by each
client's receive maximum. It is stopped with SIGTERM, which saves its database.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
)


def require_mosquitto() -> str:
    if MOSQUITTO is None:
        msg = (
            "the mosquitto binary is not installed (apt-get install mosquitto mosquitto-clients); "
            "the MQTT connector tests need a real broker"
        )
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return MOSQUITTO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.02):
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


class Mosquitto:
    """A broker of our own: ``start()``, ``stop()`` (SIGTERM: saves), ``restart()``."""

    def __init__(self, workdir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.binary = require_mosquitto()
        self.workdir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    *(extra or ["allow_anonymous true"]),
                    "persistence true",
                    f"persistence_location {workdir}/",
                    "autosave_interval 1",
                    "max_queued_messages 0",
                    "max_queued_bytes 0",
                    "max_inflight_messages 0",
                    "persistent_client_expiration 1d",
                    # As root, mosquitto would switch to the user "mosquitto", who cannot write
                    # the persistence file in our temporary directory.
                    f"user {getpass.getuser()}",
                    "",
                ]
            )
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=log
            )
        wait_for(self._accepts, 10, f"mosquitto on port {self.port}")

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


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
