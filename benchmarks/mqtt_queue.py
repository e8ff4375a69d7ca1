"""Benchmark what Mosquitto's queue limit drops: N QoS 1 messages for a subscriber, counted.

Run: ``.venv/bin/python benchmarks/mqtt_queue.py [--messages N]`` (needs ``mosquitto`` and
``mosquitto_pub``).

A Mosquitto of its own on a free port (a temporary folder, stopped at the end), once with its
default settings (``max_queued_messages 1000``) and once with ``max_queued_messages 0`` (no
limit, as the README recommends). Each time N messages are published at QoS 1 on one topic, by
``mosquitto_pub -l -q 1`` (N lines on its stdin) and by a paho client that waits for every
PUBACK (so the broker has accepted all N), to

* an **offline** persistent session: a QoS 1 subscriber with a persistent session
  (``clean_session`` false) subscribes, disconnects, the messages are published, and it comes
  back and counts what the broker kept for it;
* an **online** subscriber (QoS 1, connected throughout) that only counts.

Counting stops once nothing has arrived for ``--quiet`` seconds. The table goes to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from _common import print_table, progress

TOPIC = "bench/queue"
# mosquitto_pub -l as the README's figure was taken; paho waits for every PUBACK, so the broker
# has accepted all N and what is missing was dropped by the broker.
PUBLISHERS = ("mosquitto_pub -l", "paho, every PUBACK awaited")


def mosquitto_version() -> str:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    out = subprocess.run([exe, "-h"], capture_output=True, text=True).stdout.split()
    return out[2] if len(out) > 2 else "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: Path, extra: str = "") -> None:
        self.port = free_port()
        conf = folder / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{extra}")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Counter:
    """A QoS 1 subscriber that counts what arrives on TOPIC."""

    def __init__(self, port: int, client_id: str, *, clean: bool) -> None:
        self.count = 0
        self.last = time.monotonic()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.max_inflight_messages_set(20)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("no SUBACK")

    def _on_message(self, *_):
        self.count += 1
        self.last = time.monotonic()

    def wait_quiet(self, quiet: float, timeout: float = 600) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last < quiet and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, n: int, publisher: str) -> None:
    if publisher == "mosquitto_pub -l":
        lines = "".join(f"{i}\n" for i in range(n)).encode()
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", TOPIC, "-q", "1", "-l"],
            input=lines,
            check=True,
        )
        return
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("no CONNACK")
        for lo in range(0, n, 1000):  # windows of 1,000, every PUBACK awaited
            infos = [client.publish(TOPIC, str(i), qos=1) for i in range(lo, min(lo + 1000, n))]
            for info in infos:
                info.wait_for_publish(timeout=60)
                if not info.is_published():
                    raise RuntimeError("the broker did not acknowledge a publish")
    finally:
        client.disconnect()
        client.loop_stop()


def offline(port: int, n: int, quiet: float, publisher: str) -> int:
    client_id = f"offline-{uuid.uuid4().hex[:8]}"
    Counter(port, client_id, clean=False).close()  # the session and its subscription stay
    progress(f"offline session: {publisher} publishes {n:,} messages")
    publish(port, n, publisher)
    back = Counter(port, client_id, clean=False)
    try:
        return back.wait_quiet(quiet)
    finally:
        back.close()


def online(port: int, n: int, quiet: float, publisher: str) -> int:
    sub = Counter(port, f"online-{uuid.uuid4().hex[:8]}", clean=True)
    try:
        progress(f"online subscriber: {publisher} publishes {n:,} messages")
        publish(port, n, publisher)
        return sub.wait_quiet(quiet)
    finally:
        sub.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds without a message")
    args = parser.parse_args(argv)
    if shutil.which("mosquitto_pub") is None or not (
        shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()
    ):
        print("needs mosquitto and mosquitto_pub", file=sys.stderr)
        return 2
    rows = []
    configs = [
        ("defaults (max_queued_messages 1000)", ""),
        ("max_queued_messages 0", "max_queued_messages 0\n"),
    ]
    cases = (("offline persistent session", offline), ("online", online))
    with tempfile.TemporaryDirectory(prefix="plantcast-mqtt-queue-") as tmp:
        for publisher in PUBLISHERS:
            for name, extra in configs:
                for case, fn in cases:
                    broker = Broker(Path(tmp), extra)
                    try:
                        got = fn(broker.port, args.messages, args.quiet, publisher)
                    finally:
                        broker.stop()
                    progress(f"{publisher}, {name}, {case}: {got:,} of {args.messages:,}")
                    share = f"{got / args.messages:.1%}"
                    rows.append([publisher, name, case, f"{args.messages:,}", f"{got:,}", share])
    print_table(
        f"Mosquitto {mosquitto_version()}: N messages published at QoS 1 on one topic, received "
        "by a QoS 1 subscriber",
        ["publisher", "broker settings", "subscriber", "published", "received", "share"],
        rows,
        left=3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
