"""A Mosquitto of our own on a free port, configured not to drop, for tests and benchmarks.

The config is the one the README's "nothing lost" depends on: persistence on, no queue limits
(``max_queued_messages 0``, ``max_queued_bytes 0``), in-flight bounded by each client's receive
maximum. It is stopped with SIGTERM, which saves its database, so a restart on the same port
keeps the persistent sessions.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
)
MISSING = "the mosquitto binary is not installed (apt-get install mosquitto mosquitto-clients)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy and return its value; raise ``TimeoutError``
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


class Mosquitto:
    """A broker of our own: ``start()``, ``stop()`` (SIGTERM: saves), ``restart()``.

    ``extra`` replaces ``allow_anonymous true`` (TLS, a password file); ``autosave_interval``
    is how often, in seconds, the broker saves its sessions between stops.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra: tuple[str, ...] = (),
        autosave_interval: int = 1,
    ) -> None:
        if MOSQUITTO is None:
            raise FileNotFoundError(MISSING)
        self.binary = MOSQUITTO
        self.workdir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    *(extra or ["allow_anonymous true"]),
                    "persistence true",
                    f"persistence_location {workdir}/",
                    f"autosave_interval {autosave_interval}",
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
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
