"""One alert per episode, not per detector, on SQLite and PostgreSQL: detectors that flag the
same episode make one alert listing each with its score (serial and bulk writers alike);
alerts stored before keep their ids; the CLI, the API and notifications show the detectors."""

from __future__ import annotations

import json
import warnings

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import text

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.notify import add_destination
from plantcast.services.apikeys import create_key
from plantcast.services.detection import detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import alerts as alert_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = pd.Timestamp("2026-01-01", tz="UTC")
STEP = pd.Timedelta("30min")
SHIFT_AT = 16 * 48  # a +15 step of 8 h on day 16: a residual and a level shift at once


def _shifted(seed: int) -> pd.Series:
    s = generate_readings(SignalModel(seed=seed), START, periods=21 * 48, interval=STEP)
    values = s.to_numpy().copy()
    values[SHIFT_AT : SHIFT_AT + 16] += 15.0
    return pd.Series(values, index=s.index)


def _episodes(store, name):
    sid = store.get_sensor(name).id
    return [
        (a.ts, a.ends_at, a.detector, tuple(a.detectors))
        for a in store.list_alerts(sensor_id=sid, limit=100)
    ]


def test_detectors_that_agree_on_an_episode_make_one_alert(store):
    series = _shifted(1)
    for name in ("serial", "bulk"):
        sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP).id
        store.write_readings(sid, series)
    detect_sensor(store, "serial")
    detect_pass(store, ["bulk"])
    alerts = store.list_alerts(sensor_id=store.get_sensor("serial").id)
    step_at = series.index[SHIFT_AT]
    near = [a for a in alerts if abs(a.ts - step_at) <= 2 * STEP]
    assert len(near) == 1, alerts  # one alert, not one per detector
    agreed = near[0].detectors
    assert {"residual_z", "level_shift"} <= set(agreed)
    assert next(iter(agreed)) == near[0].detector  # the one that raised it comes first
    assert agreed[near[0].detector] == near[0].score
    assert _episodes(store, "bulk") == _episodes(store, "serial")
    # a detector that agreed finds the alert in a listing filtered by it
    listed = store.list_alerts(sensor_id=near[0].sensor_id, detector="level_shift")
    assert near[0].id in {a.id for a in listed}


def test_alerts_stored_before_keep_their_ids_and_read_as_their_one_detector(store):
    sid = store.ensure_sensor("old", source=Source.IMPORTED, interval=STEP).id
    with store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN detectors")
        when = 0 if store.dialect == "sqlite" else START.to_pydatetime()  # as each stores it
        conn.execute(
            text(
                "INSERT INTO alerts (sensor_id, ts, detector, score, value, status, created_at)"
                " VALUES (:sid, :ts, 'stuck', 9.5, 1.0, 'open', :ts)"
            ),
            {"sid": sid, "ts": when},
        )
    store.init()  # the upgrade `plantcast init` runs
    (alert,) = store.list_alerts(sensor_id=sid)
    assert alert.detectors == {"stuck": 9.5}
    before_id = alert.id
    with store.write() as conn:
        alert_rows.update_alert(conn, before_id, detectors={"stuck": 9.5, "dropout": 3.0})
    (alert,) = store.list_alerts(sensor_id=sid)
    assert alert.id == before_id and alert.detectors == {"stuck": 9.5, "dropout": 3.0}


def test_cli_api_and_notifications_show_the_agreeing_detectors(store, db_url):
    sid = store.ensure_sensor("p1", source=Source.IMPORTED, interval=STEP).id
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    agreed = {"residual_z": 8.25, "level_shift": 5.5}
    with store.write() as conn:
        alert_id = alert_rows.insert_alert(
            conn, sid, ts=START, detector="residual_z", score=8.25, value=1.0, detectors=agreed
        )
    listed = [{"detector": "residual_z", "score": 8.25}, {"detector": "level_shift", "score": 5.5}]

    runner = CliRunner()
    out = runner.invoke(cli, ["alerts", "--database-url", db_url, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["alerts"][0]["detectors"] == listed
    table = runner.invoke(cli, ["alerts", "--database-url", db_url])
    assert "residual_z 8.2" in table.output and "level_shift 5.5" in table.output
    csv_out = runner.invoke(cli, ["alerts", "--database-url", db_url, "--format", "csv"])
    assert '"residual_z:8.25,level_shift:5.50"' in csv_out.output

    token = create_key(store, "reader", "read")[1]
    client = TestClient(create_app(store=store))
    body = client.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["alerts"][0]["id"] == alert_id and body["alerts"][0]["detectors"] == listed

    with store.read() as conn:
        (note,) = [r for r in conn.execute(alert_rows.outbox.notifications.select())]
    assert json.loads(note.body)["alert"]["detectors"] == listed
