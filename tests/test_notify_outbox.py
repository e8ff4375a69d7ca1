"""The notification outbox: a row per alert transition per destination, in the alert's own
transaction, whatever surface made the transition (store, detection service, CLI)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.notify import add_destination, sign, verify
from plantcast.notify.sender import backoff_delay
from plantcast.services.detection import detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import alerts as alert_rows
from plantcast.store import notifications as outbox

START = pd.Timestamp("2026-03-01", tz="UTC")


def _rows(store, alert_id=None):
    with store.read() as conn:
        return outbox.list_outbox(conn, alert_id=alert_id)


def _open(store, sid, hours=0, ends=None) -> int:
    with store.write() as conn:
        return alert_rows.insert_alert(
            conn,
            sid,
            detector="residual_z",
            ts=START + pd.Timedelta(hours=hours),
            ends_at=ends,
            score=6.0,
            value=130.0,
            expected=100.0,
        )


def test_every_transition_queues_one_row_per_destination(store):
    sid = store.ensure_sensor("p1", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    quiet = _open(store, sid)
    assert _rows(store) == []  # no destination: nothing queued

    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    add_destination(store, "mail", email="ops@example.com, oncall@example.com")
    a = _open(store, sid, hours=5)
    store.set_alert_status(a, "acknowledged")
    store.set_alert_status(a, "acknowledged")  # no change: nothing queued
    store.set_alert_status(a, "resolved")
    store.set_alert_status(a, "open")
    with store.write() as conn:  # the detector: the episode ends, then moves its end on
        alert_rows.update_alert(conn, quiet, ends_at=START + pd.Timedelta(hours=1))
        alert_rows.update_alert(conn, quiet, ends_at=START + pd.Timedelta(hours=2), score=7.0)
        alert_rows.update_alert(conn, quiet, score=8.0)

    rows = _rows(store)
    events = [(r["alert_id"], r["event"]) for r in rows]
    expected = [(a, "opened"), (a, "acknowledged"), (a, "resolved"), (a, "reopened")]
    expected += [(quiet, "resolved")]
    assert events == [e for e in expected for _ in (0, 1)]  # one per destination, in order
    assert len({r["idempotency_key"] for r in rows}) == len(rows)
    assert all(r["delivered_at"] is None and r["attempts"] == 0 for r in rows)
    body = json.loads(rows[0]["body"])
    assert body["event"] == "alert.opened" and body["by"] == "detector"
    assert body["idempotency_key"] == rows[0]["idempotency_key"]
    assert body["alert"]["sensor"] == "p1" and body["alert"]["id"] == a
    assert body["alert"]["start"] == (START + pd.Timedelta(hours=5)).isoformat()
    by = {json.loads(r["body"])["by"] for r in rows if r["event"] == "acknowledged"}
    assert by == {"operator"}


def test_the_row_commits_and_rolls_back_with_the_alert(store):
    sid = store.ensure_sensor("p2", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), store.write() as conn:
        alert_rows.insert_alert(conn, sid, detector="stuck", ts=START, score=1.0, value=1.0)
        raise RuntimeError("the detector's transaction fails after the insert")
    assert store.list_alerts() == [] and _rows(store) == []
    a = _open(store, sid)
    assert [r["event"] for r in _rows(store, a)] == ["opened"]


def test_detection_queues_an_opened_row_for_each_alert_it_writes(store):
    """Both write paths: one sensor chunk by chunk, and many sensors in bulk batches."""
    step = pd.Timedelta("1h")
    s = generate_readings(SignalModel(seed=8), START, periods=70 * 24, interval=step)
    s = s[(s.index < START + pd.Timedelta("20d")) | (s.index >= START + pd.Timedelta("55d"))]
    for name in ("gap", "gap2", "gap3"):
        sensor = store.ensure_sensor(name, source=Source.IMPORTED, interval=step)
        store.write_readings(sensor.id, s)
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    detect_sensor(store, "gap")
    detect_pass(store, ["gap2", "gap3"])
    found = store.list_alerts()
    assert {a.sensor_id for a in found} == {s.id for s in store.list_sensors()}  # the gaps
    opened = sorted(r["alert_id"] for r in _rows(store) if r["event"] == "opened")
    assert opened == sorted(a.id for a in found)


def test_cli_alert_commands_queue_notifications(store, db_url):
    sid = store.ensure_sensor("p3", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    a = _open(store, sid)
    for verb in ("ack", "resolve"):
        result = CliRunner().invoke(cli, ["alerts", "--database-url", db_url, verb, str(a)])
        assert result.exit_code == 0, result.output
    assert [r["event"] for r in _rows(store, a)] == ["opened", "acknowledged", "resolved"]


def test_cli_add_list_remove(sqlite_url, monkeypatch):
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["notify", "add", "ops", "--webhook", "http://127.0.0.1:9/x", "--database-url", sqlite_url],
    )
    assert added.exit_code == 0, added.output
    assert "signing secret (shown once" in added.output
    env = runner.invoke(
        cli,
        ["notify", "add", "cmms", "--webhook", "https://cmms.example/hook", "--secret-env",
         "CMMS_SECRET", "--database-url", sqlite_url],
    )  # fmt: skip
    assert env.exit_code == 0 and "$CMMS_SECRET" in env.output
    mail = runner.invoke(
        cli, ["notify", "add", "m", "--email", "a@example.com", "--database-url", sqlite_url]
    )
    assert mail.exit_code == 0, mail.output
    listed = runner.invoke(
        cli, ["notify", "list", "--format", "json", "--database-url", sqlite_url]
    )
    rows = json.loads(listed.output)
    assert [(r["name"], r["kind"], r["secret"]) for r in rows] == [
        ("ops", "webhook", "stored"),
        ("cmms", "webhook", "$CMMS_SECRET"),
        ("m", "email", "-"),
    ]
    secret = added.output.split("it): ")[1].split()[0]
    assert len(secret) >= 40 and secret not in listed.output  # shown once, never listed
    for bad, says in [
        (["--webhook", "ftp://x"], "not an http(s) URL"),
        (["--email", "not-an-address"], "not an e-mail address"),
        ([], "give either --webhook URL or --email"),
    ]:
        r = runner.invoke(cli, ["notify", "add", "bad", *bad, "--database-url", sqlite_url])
        assert r.exit_code == 1 and says in r.output, r.output
    dup = runner.invoke(
        cli, ["notify", "add", "ops", "--email", "a@example.com", "--database-url", sqlite_url]
    )
    assert dup.exit_code == 1 and "exists" in dup.output
    gone = runner.invoke(cli, ["notify", "remove", "ops", "--database-url", sqlite_url])
    assert gone.exit_code == 0 and "removed ops" in gone.output
    missing = runner.invoke(cli, ["notify", "test", "ops", "--database-url", sqlite_url])
    assert missing.exit_code == 1 and "no notification destination 'ops'" in missing.output


def test_signature_and_backoff():
    body = b'{"event":"alert.opened"}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s3cret", body, header)
    assert not verify("s3cret", body + b" ", header)
    assert not verify("other", body, header) and not verify("s3cret", body, None)
    delays = [backoff_delay(n, 2.0, 60.0) for n in range(1, 9)]
    for n, d in enumerate(delays, start=1):
        assert 0.9 * min(60, 2 * 2 ** (n - 1)) <= d <= 1.1 * min(60, 2 * 2 ** (n - 1))


def test_old_delivered_rows_are_purged_undelivered_never(store):
    from datetime import UTC, datetime, timedelta

    from plantcast.core.config import load_settings
    from plantcast.notify import Sender

    sid = store.ensure_sensor("p4", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    a, b, c = (_open(store, sid, hours=h) for h in range(3))
    now = datetime.now(UTC)
    with store.write() as conn:
        rows = {r["alert_id"]: r["id"] for r in outbox.list_outbox(conn)}
        outbox.mark_delivered(conn, rows[a], now - timedelta(days=40))
        outbox.mark_delivered(conn, rows[b], now - timedelta(days=2))
    sender = Sender(store, load_settings(), backoff=1, max_backoff=1, keep=timedelta(days=30))
    assert sender.purge() == 1
    assert [r["alert_id"] for r in _rows(store)] == [b, c]  # c never delivered: kept
    assert Sender(store, load_settings(), backoff=1, max_backoff=1).purge() == 0  # keep None
