"""The plant overview: statuses, latest values, alert counts and SQL sparklines of every sensor
(services.overview, store.overview) on SQLite and PostgreSQL, and the overview page under
Streamlit's AppTest (what it lists, searches and filters)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event
from streamlit.testing.v1 import AppTest

import plantcast.dashboard
from plantcast.core.types import AlertStatus, Source
from plantcast.services.assets import create_asset
from plantcast.services.overview import SPARK_BUCKETS, asset_overview, overview, status_of
from plantcast.services.silences import add_silence
from plantcast.store import Store
from plantcast.store import alerts as alert_rows

STEP = pd.Timedelta("30min")
NOW = pd.Timestamp("2026-03-01 12:00", tz="UTC")
pytestmark = pytest.mark.usefixtures("fresh_resources")  # the page's caches (dashboard_fixtures)


def _sensor(store: Store, name: str, *, last: pd.Timestamp | None, n: int = 96) -> int:
    """A sensor whose readings are 0, 1, 2, … every 30 min up to ``last`` (none if None)."""
    s = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP, unit="bar")
    if last is not None:
        idx = pd.date_range(end=last, periods=n, freq=STEP, name="ts")
        store.write_readings(s.id, pd.Series(np.arange(n, dtype=float), index=idx))
    return s.id


def _alert(store: Store, sid: int, status: AlertStatus = AlertStatus.OPEN) -> int:
    with store.write() as conn:
        aid = alert_rows.insert_alert(
            conn, sid, ts=NOW - STEP, detector="probe", score=5.0, value=1.0, expected=0.0
        )
    if status is not AlertStatus.OPEN:
        store.set_alert_status(aid, status)
    return aid


@pytest.fixture
def plant(store):
    """fine: fresh; old: last reading 3 h ago; empty: no reading; alarm: an open alert;
    muted: an open alert but silenced (by the caller)."""
    ids = {
        "fine": _sensor(store, "fine", last=NOW),
        "old": _sensor(store, "old", last=NOW - pd.Timedelta("3h")),
        "empty": _sensor(store, "empty", last=None),
        "alarm": _sensor(store, "alarm", last=NOW),
        "muted": _sensor(store, "muted", last=NOW),
    }
    _alert(store, ids["alarm"])
    _alert(store, ids["alarm"], AlertStatus.ACKNOWLEDGED)
    _alert(store, ids["alarm"], AlertStatus.RESOLVED)
    _alert(store, ids["muted"])
    return ids


def test_every_status_and_the_worst_first(store, plant):
    ov = overview(store, now=NOW, silenced={plant["muted"]})
    assert [(r.name, r.status) for r in ov.rows] == [
        ("alarm", "alerting"),
        ("old", "stale"),
        ("empty", "no data"),
        ("muted", "silenced"),
        ("fine", "ok"),
    ]
    assert ov.counts == {"alerting": 1, "stale": 1, "no data": 1, "silenced": 1, "ok": 1}
    by = {r.name: r for r in ov.rows}
    assert (by["alarm"].open_alerts, by["alarm"].acknowledged_alerts) == (1, 1)  # not resolved
    assert by["fine"].latest_ts == NOW and by["fine"].latest_value == 95.0
    assert by["fine"].age == pd.Timedelta(0) and by["old"].age == pd.Timedelta("3h")
    assert by["empty"].latest_value is None and by["empty"].age is None
    assert by["empty"].sparkline == []


def test_a_silence_on_now_makes_a_sensor_silenced(store, plant):
    from plantcast.services.silences import add_silence

    add_silence(store, reason="pump swap", author="olga", sensor="muted", duration="2h")
    by = {r.name: r.status for r in overview(store).rows}  # now: the silence is on
    assert by["muted"] == "silenced" and by["alarm"] == "alerting"
    add_silence(store, reason="plant stop", author="olga", everything=True, duration="1h")
    assert overview(store).counts["silenced"] == 4  # every sensor with data


def test_stale_after_three_intervals_never_under_five_minutes(store):
    sid = _sensor(store, "fast", last=NOW, n=10)
    summary = next(s for s in store.sensor_summaries() if s.sensor_id == sid)
    assert status_of(summary, NOW + 3 * STEP) == "ok"
    assert status_of(summary, NOW + 3 * STEP + pd.Timedelta("1s")) == "stale"
    second = dataclasses.replace(summary, interval_us=1_000_000)
    assert status_of(second, NOW + pd.Timedelta("5min")) == "ok"
    assert status_of(second, NOW + pd.Timedelta("301s")) == "stale"


def test_sparkline_is_the_last_day_bucketed_in_sql(store):
    sid = _sensor(store, "line", last=NOW, n=96)  # values 0..95, the last 48 in the last day
    lines = store.sparklines([sid], pd.Timedelta("24h"), 48)
    assert lines[sid] == [float(v) for v in range(48, 96)]
    lines = store.sparklines([sid], pd.Timedelta("24h"), 24)  # two readings a bucket: means
    assert lines[sid] == [v + 0.5 for v in range(48, 96, 2)]
    # The span ends at the sensor's own latest reading, not at now.
    _sensor(store, "gap", last=NOW - pd.Timedelta("10d"), n=48)
    line = overview(store, now=NOW, search="gap").rows[0].sparkline
    assert len(line) == SPARK_BUCKETS and line[-1] == 47.0 and line[0] == 0.0


def test_a_missing_reading_leaves_its_bucket_empty(store):
    sid = _sensor(store, "holes", last=NOW, n=48)
    idx = pd.date_range(end=NOW, periods=48, freq=STEP, name="ts")
    hole = store.ensure_sensor("holes2", source=Source.IMPORTED, interval=STEP)
    series = pd.Series(np.arange(48, dtype=float), index=idx).drop(idx[10])
    store.write_readings(hole.id, series)
    lines = store.sparklines([sid, hole.id], pd.Timedelta("24h"), 48)
    assert lines[sid][10] == 10.0
    assert lines[hole.id][10] is None and lines[hole.id][11] == 11.0


def test_search_status_filter_and_pages(store, plant):
    assert [r.name for r in overview(store, now=NOW, search="AL").rows] == ["alarm"]
    ov = overview(store, now=NOW, statuses=["ok", "stale"])
    assert [r.name for r in ov.rows] == ["old", "fine"] and ov.matching == 2
    first = overview(store, now=NOW, page=0, page_size=2)
    second = overview(store, now=NOW, page=1, page_size=2)
    assert [r.name for r in first.rows] == ["alarm", "muted"] and first.matching == 5
    assert [r.name for r in second.rows] == ["old", "empty"]
    assert second.counts == first.counts  # the figures are the whole plant's


def test_one_refresh_is_three_statements_whatever_the_number_of_sensors(store):
    def statements(n: int) -> int:
        for i in range(n):
            _sensor(store, f"s{n}_{i:03d}", last=NOW, n=4)
        seen: list[str] = []

        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(statement)

        event.listen(store.engine, "before_cursor_execute", count)
        try:
            ov = overview(store, now=NOW)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        assert all(r.sparkline for r in ov.rows)
        return len(seen)

    assert statements(3) == statements(40) == 3  # silences, sensors, sparklines


# -- the page -----------------------------------------------------------------------------
def _run(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", url)
    at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_lists_searches_and_filters(db_url, store, plant, monkeypatch):
    at = _run(db_url, monkeypatch)
    shown = at.session_state["overview"]
    assert set(shown["sensors"]) == {"alarm", "old", "empty", "muted", "fine"}
    assert shown["sensors"][:2] == ["alarm", "muted"]  # alerting first (nothing silenced here)
    assert shown["statuses"]["empty"] == "no data"
    assert list(at.dataframe[0].value["sensor"]) == shown["sensors"]
    at.text_input(key="ov_search").input("fi").run()
    assert at.session_state["overview"]["sensors"] == ["fine"]
    at.text_input(key="ov_search").input("").run()
    at.multiselect(key="ov_status").select("no data").run()
    assert at.session_state["overview"]["sensors"] == ["empty"]
    assert at.session_state["overview"]["counts"]["alerting"] == 2


def test_the_page_says_what_to_do_without_sensors(sqlite_url, monkeypatch):
    Store.open(sqlite_url).init()
    at = _run(sqlite_url, monkeypatch)
    assert "no sensors yet" in " ".join(i.value for i in at.info)


def test_an_unreachable_database_is_a_message(monkeypatch):
    at = _run("postgresql://postgres@127.0.0.1:9/test", monkeypatch)
    assert "Cannot reach the database" in " ".join(e.value for e in at.error)


def test_assets_alerting_first_and_silenced_with_their_sensors(store):
    for name in ("speed", "flow", "temp"):
        _sensor(store, name, last=NOW)
    create_asset(store, "pump_b", ["speed", "flow"])
    pump = create_asset(store, "pump_a", ["speed", "flow", "temp"])
    with store.write() as conn:
        alert_rows.insert_alert(
            conn, None, asset_id=pump.id, ts=NOW, detector="pca_q", score=9.0, value=9.0
        )
    flow = store.get_sensor("flow")
    _alert(store, flow.id)
    rows = asset_overview(store, now=NOW)
    assert [(r.name, r.status, r.sensors, r.open_alerts, r.alerting_sensors) for r in rows] == [
        ("pump_a", "alerting", 3, 1, 1),
        ("pump_b", "ok", 2, 0, 1),
    ]
    add_silence(
        store, asset="pump_b", start=NOW, end=NOW + pd.Timedelta("1h"), reason="seal", author="o"
    )
    assert {r.name: r.status for r in asset_overview(store, now=NOW)}["pump_b"] == "silenced"


def test_the_page_lists_assets_below_the_sensors(db_url, store, monkeypatch):
    _sensor(store, "speed", last=NOW)
    _sensor(store, "flow", last=NOW)
    create_asset(store, "pump", ["speed", "flow"])
    at = _run(db_url, monkeypatch)
    assert at.session_state["overview_assets"] == {"pump": "ok"}
    assert "pump" in list(at.dataframe[1].value["asset"])
