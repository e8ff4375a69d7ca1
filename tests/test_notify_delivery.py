"""Delivery end to end: a real webhook receiver that fails, goes down and comes back, a sender
process killed and restarted mid-way; every transition arrives once per idempotency key, signed.
And e-mail through a local SMTP server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.config import load_settings
from plantcast.core.types import Source
from plantcast.notify import Sender, add_destination, verify
from plantcast.store import alerts as alert_rows
from plantcast.store import notifications as outbox

pytestmark = pytest.mark.timeout(120)
START = pd.Timestamp("2026-03-01", tz="UTC")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on 127.0.0.1 as a real one should be: it checks the signature over
    the raw body and acts once per idempotency key (a repeat is answered 200 and dropped). It
    can fail its first requests, answer slowly, and be taken down and brought back."""

    def __init__(self, secret: str, *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.secret, self.fail_first, self.delay = secret, fail_first, delay
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/plantcast"
        self.lock = threading.Lock()
        self.requests: list[tuple[str, bool, int]] = []  # key, signature ok, status answered
        self.processed: dict[str, dict] = {}  # key -> payload, first time only
        self.repeats = 0
        self._server = None

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                ok = verify(receiver.secret, body, self.headers.get("X-Plantcast-Signature"))
                time.sleep(receiver.delay)
                with receiver.lock:
                    if len(receiver.requests) < receiver.fail_first:
                        status = 503
                    elif not ok:
                        status = 401
                    elif key in receiver.processed:
                        status, receiver.repeats = 200, receiver.repeats + 1
                    else:
                        status = 200
                        receiver.processed[key] = json.loads(body)
                    receiver.requests.append((key, ok, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self) -> int:
        with self.lock:
            return len(self.processed)


def _wait(what: str, check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)


def _sender(db_url: str) -> subprocess.Popen:
    args = ["notify", "run", "--database-url", db_url, "--poll", "100ms"]
    args += ["--backoff", "200ms", "--max-backoff", "1s"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "plantcast", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _outbox(store) -> list[dict]:
    with store.read() as conn:
        return outbox.list_outbox(conn)


def test_every_transition_arrives_once_signed_through_failures_outages_and_restarts(store, db_url):
    dest, secret = add_destination(store, "cmms", webhook="http://127.0.0.1:1/unused")
    receiver = Receiver(secret, fail_first=3, delay=0.03)
    with store.write() as conn:  # point the destination at the receiver's free port
        conn.execute(
            outbox.notify_destinations.update()
            .where(outbox.notify_destinations.c.id == dest.id)
            .values(target=receiver.url)
        )
    sid = store.ensure_sensor("pump", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    expected: list[tuple[int, str]] = []

    def open_alert(i: int) -> int:
        with store.write() as conn:
            a = alert_rows.insert_alert(
                conn, sid, detector="stuck", ts=START + pd.Timedelta(hours=i), score=4.0, value=1.0
            )
        expected.append((a, "opened"))
        return a

    def set_status(a: int, status: str, event: str) -> None:
        store.set_alert_status(a, status)
        expected.append((a, event))

    receiver.start()
    ids = [open_alert(i) for i in range(3)]
    sender = _sender(db_url)
    try:
        # 1. the receiver's first three answers are 503: retried with backoff until accepted
        _wait("the first three transitions arrive", lambda: receiver.count() == 3)
        assert [s for _, _, s in receiver.requests[:3]] == [503, 503, 503]

        # 2. the receiver is down: transitions queue up and are tried, and the sender is killed
        receiver.stop()
        set_status(ids[0], "acknowledged", "acknowledged")
        set_status(ids[1], "acknowledged", "acknowledged")
        set_status(ids[0], "resolved", "resolved")
        ids.append(open_alert(3))
        _wait(
            "the sender has failed to reach the receiver",
            lambda: (
                sum(r["attempts"] > 0 and r["delivered_at"] is None for r in _outbox(store)) == 3
            ),
        )
        waiting = {(r["alert_id"], r["event"]): r for r in _outbox(store) if not r["delivered_at"]}
        assert len(waiting) == 4
        # the resolve of ids[0] waits behind its acknowledge: never sent out of order
        assert waiting.pop((ids[0], "resolved"))["attempts"] == 0
        assert all("cannot reach" in r["last_error"] for r in waiting.values())
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
        set_status(ids[1], "resolved", "resolved")
        set_status(ids[2], "resolved", "resolved")

        # 3. the receiver is back, a new sender picks up everything that waited
        receiver.start()
        sender = _sender(db_url)
        _wait("the queued transitions arrive", lambda: receiver.count() == len(expected))

        # 4. a burst, and the sender killed in the middle of delivering it
        burst = [open_alert(10 + i) for i in range(24)]
        n_before = receiver.count()
        _wait("part of the burst arrives", lambda: receiver.count() >= n_before + 5)
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
        assert receiver.count() < len(expected), "the burst was over before the kill"
        set_status(burst[0], "acknowledged", "acknowledged")
        sender = _sender(db_url)
        _wait("the rest of the burst arrives", lambda: receiver.count() == len(expected))
        sender.send_signal(signal.SIGTERM)
        assert sender.wait(15) == 0  # a clean stop
    finally:
        if sender.poll() is None:
            sender.kill()
        receiver.stop()

    rows = _outbox(store)
    assert all(r["delivered_at"] is not None for r in rows)
    assert set(receiver.processed) == {r["idempotency_key"] for r in rows}
    got = sorted(
        (p["alert"]["id"], p["event"].removeprefix("alert.")) for p in receiver.processed.values()
    )
    assert got == sorted(expected)  # each transition once, nothing missing, nothing extra
    arrived = [(p["alert"]["id"], p["event"]) for p in receiver.processed.values()]
    for a in {a for a, _ in expected}:  # and each alert's transitions in the order they happened
        assert [e for i, e in arrived if i == a] == [f"alert.{e}" for i, e in expected if i == a]
    assert all(ok for _, ok, _ in receiver.requests)  # every request validly signed
    # A repeat is only ever a delivery accepted just before a kill, under its own key.
    assert receiver.repeats <= 2


def _point_at(store, dest_id: int, url: str) -> None:
    with store.write() as conn:
        conn.execute(
            outbox.notify_destinations.update()
            .where(outbox.notify_destinations.c.id == dest_id)
            .values(target=url)
        )


def test_postgresql_senders_share_the_queue_without_sending_anything_twice(pg_url):
    from plantcast.store import Store

    store = Store.open(pg_url)
    store.init()
    try:
        dest, secret = add_destination(store, "hook", webhook="http://127.0.0.1:1/x")
        receiver = Receiver(secret, delay=0.02)
        _point_at(store, dest.id, receiver.url)
        sid = store.ensure_sensor("s", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
        with store.write() as conn:
            for i in range(40):
                alert_rows.insert_alert(
                    conn, sid, detector="stuck", ts=START + pd.Timedelta(hours=i), score=1, value=1
                )
        receiver.start()
        senders = [Sender(store, load_settings(), backoff=0.1, max_backoff=1) for _ in range(2)]
        done = [0, 0]

        def work(i: int) -> None:
            while (n := senders[i].run_once(limit=5).delivered) or receiver.count() < 40:
                done[i] += n
                if not n:
                    time.sleep(0.02)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        receiver.stop()
    finally:
        store.close()
    assert receiver.count() == 40 and len(receiver.requests) == 40  # none twice
    assert sum(done) == 40 and min(done) > 0, done  # both senders took a share


def test_an_alerts_later_transition_waits_for_the_earlier_one(sqlite_store):
    store = sqlite_store
    dest, secret = add_destination(store, "hook", webhook="http://127.0.0.1:1/x")
    receiver = Receiver(secret)
    _point_at(store, dest.id, receiver.url)
    sid = store.ensure_sensor("s", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    with store.write() as conn:
        a = alert_rows.insert_alert(conn, sid, detector="stuck", ts=START, score=1.0, value=1.0)
    sender = Sender(store, load_settings(), backoff=0.05, max_backoff=0.05)
    assert sender.run_once().failed == 1  # the receiver is down: "opened" waits to be retried
    store.set_alert_status(a, "acknowledged")
    time.sleep(0.1)  # past the backoff: "opened" is due again, "acknowledged" is new
    receiver.start()
    try:
        while receiver.count() < 2:
            assert sender.run_once().failed == 0
    finally:
        receiver.stop()
    events = [p["event"] for p in receiver.processed.values()]
    assert events == ["alert.opened", "alert.acknowledged"]


@pytest.fixture
def sqlite_store(sqlite_url):
    from plantcast.store import Store

    s = Store.open(sqlite_url)
    s.init()
    yield s
    s.close()


def test_email_reaches_a_local_smtp_server(sqlite_store):
    store = sqlite_store
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    got = []

    class Keep(Message):
        def handle_message(self, message):
            got.append(message)

    port = _free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        add_destination(store, "oncall", email="oncall@plant.example")
        sid = store.ensure_sensor("tank", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
        with store.write() as conn:
            a = alert_rows.insert_alert(
                conn, sid, detector="level_shift", ts=START, score=9.5, value=140.0
            )
        settings = load_settings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_from="pc@plant.example",
        )
        stats = Sender(store, settings, backoff=0.1, max_backoff=1).run_once()
        assert stats.delivered == 1, stats.errors
        _wait("the message arrives", lambda: len(got) == 1, timeout=10)
    finally:
        controller.stop()
    msg = got[0]
    (row,) = _outbox(store)
    assert msg["Subject"] == f"[plantcast] alert {a} opened: tank level_shift"
    assert msg["To"] == "oncall@plant.example" and msg["From"] == "pc@plant.example"
    assert msg["Message-ID"] == f"<{row['idempotency_key']}@plantcast>"
    assert "score: 9.5" in msg.get_payload()
    # No SMTP server configured: the row stays queued, with the reason, for a later try.
    with store.write() as conn:
        alert_rows.set_alert_status(conn, a, "acknowledged")
    stats = Sender(store, load_settings(smtp_host=""), backoff=0.1, max_backoff=1).run_once()
    assert stats.delivered == 0 and "PLANTCAST_SMTP_HOST is not set" in stats.errors[0]


def test_cli_test_command_and_one_sender_per_sqlite_file(sqlite_url, sqlite_store):
    store = sqlite_store
    dest, secret = add_destination(store, "hook", webhook="http://127.0.0.1:1/x")
    receiver = Receiver(secret)
    with store.write() as conn:
        conn.execute(
            outbox.notify_destinations.update()
            .where(outbox.notify_destinations.c.id == dest.id)
            .values(target=receiver.url)
        )
    runner = CliRunner()
    down = runner.invoke(cli, ["notify", "test", "hook", "--database-url", sqlite_url])
    assert down.exit_code == 1 and "test to hook failed: cannot reach" in down.output
    receiver.start()
    try:
        up = runner.invoke(cli, ["notify", "test", "hook", "--database-url", sqlite_url])
        assert up.exit_code == 0 and "test delivered to hook: HTTP 200" in up.output, up.output
    finally:
        receiver.stop()
    (payload,) = receiver.processed.values()
    assert payload["event"] == "test" and receiver.requests[0][1]  # signed

    first = Sender(store, load_settings(), backoff=1, max_backoff=1)
    first._take_sqlite_lock()
    try:
        second = runner.invoke(cli, ["notify", "run", "--database-url", sqlite_url])
        assert second.exit_code == 1 and "another `plantcast notify run`" in second.output
    finally:
        first._release()
