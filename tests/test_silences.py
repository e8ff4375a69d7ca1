"""Silences, annotations and limits: stored, listed, drawn, audited; a silenced alert is stored
and never notified."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import event, text

from plantcast.cli.main import cli
from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.core.recurrence import Weekly
from plantcast.core.types import Source
from plantcast.notify import add_destination
from plantcast.services import audit, limits, notes, silences
from plantcast.services.assets import create_asset
from plantcast.services.detection_batch import detect_pass
from plantcast.services.overlays import chart_overlays
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import alerts as alert_rows
from plantcast.store import notifications as outbox

START = pd.Timestamp("2026-03-07 00:00", tz="UTC")  # a Saturday
HOUR = pd.Timedelta("1h")


def _sensor(store, name="p1") -> int:
    return store.ensure_sensor(name, source=Source.IMPORTED, interval=HOUR).id


def _alert(store, sid, at) -> int:
    with store.write() as conn:
        return alert_rows.insert_alert(
            conn, sid, detector="residual_z", ts=at, score=6.0, value=1.0, expected=0.0
        )


def _queued(store, alert_id) -> int:
    with store.read() as conn:
        return len(outbox.list_outbox(conn, alert_id=alert_id))


def test_weekly_recurrences_are_read_and_cover_their_windows():
    sat = Weekly.parse("sat 06:00 8h")
    assert sat.text() == "sat 06:00 8h"
    assert sat.covers("2026-03-07T06:00Z") and sat.covers("2026-03-07T13:59Z")
    assert not sat.covers("2026-03-07T14:00Z") and not sat.covers("2026-03-08T07:00Z")
    assert sat.windows("2026-03-01", "2026-03-15") == [
        (pd.Timestamp("2026-03-07 06:00", tz="UTC"), pd.Timestamp("2026-03-07 14:00", tz="UTC")),
        (pd.Timestamp("2026-03-14 06:00", tz="UTC"), pd.Timestamp("2026-03-14 14:00", tz="UTC")),
    ]
    night = Weekly.parse("Fri 22:00 8h")  # past midnight into Saturday
    assert night.covers("2026-03-07T05:00Z") and not night.covers("2026-03-07T06:00Z")
    assert Weekly.parse("mon-fri 22:00 8h").days == (0, 1, 2, 3, 4)
    assert Weekly.parse("daily 02:00 30min").text() == "daily 02:00 30min"
    for bad in ("sat 06:00", "someday 06:00 8h", "sat 25:00 8h", "sat 06:00 8d", "sat 06:00 0s"):
        with pytest.raises(InputError):
            Weekly.parse(bad)


def test_a_silenced_alert_is_stored_marked_and_never_notified(store):
    sid = _sensor(store)
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    made = silences.add_silence(
        store, sensor="p1", reason="seal swap", author="ann", start=START, duration="8h"
    )
    quiet = _alert(store, sid, START + 2 * HOUR)
    loud = _alert(store, sid, START + 9 * HOUR)
    by_id = {a.id: a for a in store.list_alerts(sensor_id=sid)}
    assert by_id[quiet].silenced and not by_id[loud].silenced
    assert _queued(store, quiet) == 0 and _queued(store, loud) == 1
    # its later transitions (the detector ends it, an operator acknowledges) stay silent too
    with store.write() as conn:
        alert_rows.update_alert(conn, quiet, ends_at=START + 3 * HOUR)
    store.set_alert_status(quiet, "acknowledged")
    assert _queued(store, quiet) == 0
    assert [a.id for a in store.list_alerts(silenced=True)] == [quiet]
    # ended early: an alert after the end is notified again
    ended = silences.end_silence(store, made.id, author="bob", at=START + HOUR)
    assert ended.until == START + HOUR
    later = _alert(store, sid, START + 2 * HOUR)
    assert _queued(store, later) == 1
    with pytest.raises(Refused):
        silences.end_silence(store, made.id, author="bob")
    acts = [(e.actor, e.action, e.target) for e in audit.entries(store, action="silence.")]
    assert acts == [
        ("bob", "silence.end", f"silence:{made.id}"),
        ("ann", "silence.add", f"silence:{made.id}"),
    ]


def test_weekly_asset_and_plant_wide_silences_cover_their_sensors(store):
    sid = _sensor(store, "p1")
    other = _sensor(store, "p2")
    create_asset(store, "pump3", ["p1"])
    silences.add_silence(
        store, asset="pump3", every="sat 06:00 8h", reason="weekly PM", author="ann", start=START
    )
    assert _alert_silenced(store, sid, START + 7 * HOUR)  # Saturday 07:00
    assert not _alert_silenced(store, sid, START + 15 * HOUR)  # Saturday 15:00
    assert _alert_silenced(store, sid, START + pd.Timedelta("7d") + 6 * HOUR)  # next Saturday
    assert not _alert_silenced(store, other, START + 7 * HOUR)  # not a member
    silences.add_silence(
        store, everything=True, reason="shutdown", author="ann", start=START, end=START + 2 * HOUR
    )
    assert _alert_silenced(store, other, START + HOUR)
    spans = silences.sensor_silences(store, "p1", START, START + pd.Timedelta("8d"))
    assert [(w.start, w.end) for w in spans] == [
        (START, START + 2 * HOUR),
        (START + 6 * HOUR, START + 14 * HOUR),
        (START + pd.Timedelta("7d") + 6 * HOUR, START + pd.Timedelta("7d") + 14 * HOUR),
    ]
    everything, names = silences.silenced_sensors(store, at=START + 7 * HOUR)
    assert not everything and names == {"p1"}
    assert silences.silenced_sensors(store, at=START + HOUR)[0]
    assert len(silences.list_silences(store, at=START)) == 2
    assert silences.list_silences(store, at=START + pd.Timedelta("1d"))[0].scope == "asset"


def _alert_silenced(store, sid, at) -> bool:
    alert_id = _alert(store, sid, at)
    return next(a for a in store.list_alerts(sensor_id=sid) if a.id == alert_id).silenced


def test_a_silence_is_refused_without_a_scope_a_reason_or_an_end(store):
    _sensor(store)
    with pytest.raises(InputError, match="exactly one"):
        silences.add_silence(store, sensor="p1", everything=True, reason="x", author="a", end=START)
    with pytest.raises(InputError, match="reason"):
        silences.add_silence(store, sensor="p1", reason=" ", author="a", duration="1h")
    with pytest.raises(InputError, match="needs an end"):
        silences.add_silence(store, sensor="p1", reason="x", author="a")
    with pytest.raises(InputError, match="not after"):
        silences.add_silence(store, sensor="p1", reason="x", author="a", start=START, end=START)
    with pytest.raises(NotFound):
        silences.add_silence(store, sensor="nope", reason="x", author="a", duration="1h")
    assert audit.entries(store) == []


def test_annotations_are_added_listed_edited_and_removed_with_their_audit(store):
    _sensor(store)
    made = notes.annotate(store, "p1", "seal replaced on pump 3", author="ann", at=START)
    span = notes.annotate(
        store, "p1", "cleaning", author="bob", at=START + HOUR, end=START + 3 * HOUR
    )
    got = notes.sensor_annotations(store, "p1", START + 2 * HOUR, START + 4 * HOUR)
    assert [n.id for n in got] == [span.id]  # the point note at START is outside
    assert [n.text for n in notes.list_annotations(store, sensor="p1")] == [
        "seal replaced on pump 3",
        "cleaning",
    ]
    edited = notes.edit_annotation(store, made.id, author="ann", text="seal and bearing replaced")
    assert edited.text == "seal and bearing replaced" and edited.starts_at == START
    notes.delete_annotation(store, span.id, author="bob")
    with pytest.raises(NotFound):
        notes.get_annotation(store, span.id)
    with pytest.raises(InputError):
        notes.annotate(store, "p1", "", author="ann")
    with pytest.raises(InputError):
        notes.annotate(store, "p1", "x", author="ann", at=START, end=START - HOUR)
    got_audit = audit.entries(store, action="annotation.")
    assert [e.action for e in got_audit] == [
        "annotation.delete",
        "annotation.edit",
        "annotation.add",
        "annotation.add",
    ]
    assert got_audit[1].before == {"text": "seal replaced on pump 3"}
    assert got_audit[1].after == {"text": "seal and bearing replaced"}


def test_limits_are_set_merged_checked_cleared_and_audited(store):
    _sensor(store)
    first = limits.set_limits(store, "p1", author="ann", levels={"high": 80.0, "high_high": 95.0})
    assert first.levels() == {"high": 80.0, "high_high": 95.0} and first.deadband == 0
    both = limits.set_limits(store, "p1", author="ann", levels={"low": 10.0}, deadband=2.0)
    assert both.levels() == {"low": 10.0, "high": 80.0, "high_high": 95.0}
    assert both.deadband == 2.0 and both.updated_by == "ann"
    assert limits.sensor_limits(store, "p1") == both
    assert set(limits.all_limits(store)) == {"p1"}
    for bad in ({"low": 90.0}, {"high_high": 70.0}, {"high": float("nan")}):
        with pytest.raises(InputError):
            limits.set_limits(store, "p1", author="ann", levels=bad)
    with pytest.raises(InputError, match="deadband"):
        limits.set_limits(store, "p1", author="ann", deadband=-1.0)
    with pytest.raises(InputError, match="unknown"):
        limits.set_limits(store, "p1", author="ann", levels={"hihi": 1.0})
    unset = limits.set_limits(store, "p1", author="bob", levels={"low": None})
    assert unset.levels() == {"high": 80.0, "high_high": 95.0}
    limits.clear_limits(store, "p1", author="bob")
    assert limits.sensor_limits(store, "p1") is None
    with pytest.raises(NotFound):
        limits.clear_limits(store, "p1", author="bob")
    trail = audit.entries(store, action="limit.")
    assert [e.action for e in trail] == ["limit.clear", "limit.set", "limit.set", "limit.set"]
    assert trail[2].before == {"low": None, "deadband": 0.0}
    assert trail[2].after == {"low": 10.0, "deadband": 2.0}
    assert trail[3].before is None
    assert trail[3].after == {"high": 80.0, "high_high": 95.0, "deadband": 0.0}
    assert all(e.target == "sensor:p1" for e in trail)


def test_a_chart_gets_its_silences_annotations_and_limits_in_one_call(store):
    _sensor(store)
    silences.add_silence(store, sensor="p1", reason="pm", author="a", start=START, duration="2h")
    notes.annotate(store, "p1", "valve swap", author="a", at=START + HOUR)
    limits.set_limits(store, "p1", author="a", levels={"high": 5.0})
    got = chart_overlays(store, "p1", START - HOUR, START + 6 * HOUR)
    assert [(w.start, w.end) for w in got.silences] == [(START, START + 2 * HOUR)]
    assert [n.text for n in got.annotations] == ["valve swap"]
    assert got.limits is not None and got.limits.high == 5.0


def test_the_commands_add_list_and_end_with_one_audit_row_each(store, db_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", "shift-lead")
    _sensor(store)
    run = CliRunner().invoke
    db = ["--database-url", db_url]
    added = run(cli, ["silence", "add", *db, "--sensor", "p1", "--reason", "pm", "--for", "8h"])
    assert added.exit_code == 0, added.output
    weekly = run(
        cli, ["silence", "add", *db, "--all", "--reason", "weekly", "--every", "sat 06:00 8h"]
    )
    assert weekly.exit_code == 0 and "every sat 06:00 8h" in weekly.output, weekly.output
    listed = json.loads(run(cli, ["silence", "list", *db, "--format", "json"]).output)
    assert [s["scope"] for s in listed] == ["all", "sensor"] and listed[1]["active"]
    assert run(cli, ["silence", "end", *db, str(listed[1]["id"])]).exit_code == 0
    assert "pm" not in run(cli, ["silence", "list", *db]).output
    noted = run(cli, ["annotate", *db, "p1", "seal replaced", "--at", "2026-03-07T06:00Z"])
    assert noted.exit_code == 0, noted.output
    shown = json.loads(run(cli, ["annotations", *db, "--format", "json"]).output)
    assert shown[0]["text"] == "seal replaced" and shown[0]["author"] == "shift-lead"
    assert run(cli, ["annotations", *db, "delete", str(shown[0]["id"])]).exit_code == 0
    set_out = run(cli, ["limits", "set", *db, "p1", "--high", "80", "--deadband", "1.5"])
    assert set_out.exit_code == 0 and "high 80; deadband 1.5" in set_out.output, set_out.output
    table = run(cli, ["limits", "show", *db])
    assert "p1" in table.output and "80" in table.output
    bad = run(cli, ["limits", "set", *db, "p1", "--low", "90"])
    assert bad.exit_code != 0 and "must be below" in bad.output
    assert run(cli, ["limits", "clear", *db, "p1"]).exit_code == 0
    actions = [e.action for e in audit.entries(store)]
    assert actions == [
        "limit.clear",
        "limit.set",
        "annotation.delete",
        "annotation.add",
        "silence.end",
        "silence.add",
        "silence.add",
    ]
    assert {e.actor for e in audit.entries(store)} == {"shift-lead"}


def test_init_adds_silenced_and_details_to_an_older_alerts_table(store):
    sid = _sensor(store)
    with store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN silenced")
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN details")
        when = 0 if store.dialect == "sqlite" else START.to_pydatetime()
        conn.execute(
            text(
                "INSERT INTO alerts (sensor_id, ts, detector, score, value, status, created_at,"
                " detectors) VALUES (:sid, :ts, 'stuck', 9.5, 1.0, 'open', :ts, '[]')"
            ),
            {"sid": sid, "ts": when},
        )
    assert {"alerts.silenced added", "alerts.details added"} <= set(store.init())
    (alert,) = store.list_alerts(sensor_id=sid)
    assert not alert.silenced and alert.details == {}


def test_an_assets_own_alert_is_silenced_by_a_silence_of_the_asset(store):
    _sensor(store)
    pump = create_asset(store, "pump3", ["p1"])
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    silences.add_silence(store, asset="pump3", reason="pm", author="a", start=START, duration="2h")
    with store.write() as conn:
        quiet = alert_rows.insert_alert(
            conn, None, asset_id=pump.id, detector="t2", ts=START + HOUR, score=9.0, value=1.0
        )
        loud = alert_rows.insert_alert(
            conn, None, asset_id=pump.id, detector="t2", ts=START + 3 * HOUR, score=9.0, value=1.0
        )
    assert _queued(store, quiet) == 0 and _queued(store, loud) == 1


def test_a_pass_over_several_sensors_silences_exactly_the_alerts_a_silence_covers(store):
    """An incremental pass (each sensor one chunk, written in batches): every sensor's new
    readings have two gaps, a dropout alert at the start of each; the silences are read once a
    batch, not once an alert, and cover by scope, time, weekly window and early end."""
    day = pd.Timedelta("1d")
    s = generate_readings(SignalModel(seed=8), START, periods=26 * 24, interval=HOUR)
    first, second = START + 21 * day, START + 23 * day  # a Saturday and a Monday, 00:00
    for a in (first, second):
        s = s[(s.index < a) | (s.index >= a + 6 * HOUR)]
    names = ("a", "b", "c", "d")
    ids = {name: _sensor(store, name) for name in names}
    for sid in ids.values():
        store.write_readings(sid, s[s.index < START + 20 * day])
    detect_pass(store, names, detectors=("dropout",))  # the history: no gap, no alert
    for sid in ids.values():
        store.write_readings(sid, s[s.index >= START + 20 * day])
    create_asset(store, "pump", ["c"])
    silences.add_silence(store, sensor="a", reason="pm", author="ann", start=first, duration="1h")
    silences.add_silence(
        store, asset="pump", every="mon 00:00 1h", reason="weekly", author="ann", start=START
    )
    silences.add_silence(store, sensor="d", reason="early", author="ann", start=START, end=first)
    ended = silences.add_silence(
        store, everything=True, reason="stop", author="ann", start=second - day, duration="3d"
    )
    silences.end_silence(store, ended.id, author="bob", at=second - HOUR)
    reads = []

    def count(conn, cursor, statement, *args) -> None:
        if "FROM silences" in statement:
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        detect_pass(store, names, detectors=("dropout",), batch_size=2)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    found = {(a.sensor_id, a.ts): a.silenced for a in store.list_alerts()}
    assert set(found) == {(sid, t) for sid in ids.values() for t in (first, second)}
    assert {k for k, quiet in found.items() if quiet} == {(ids["a"], first), (ids["c"], second)}
    assert len(reads) == 2  # one a batch of two sensors (four alerts), not one an alert
