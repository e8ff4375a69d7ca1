"""Asset alerts in the store, on SQLite and PostgreSQL: an alert names its asset (no sensor)
and its contributors; an older alerts table is upgraded in place keeping every alert and its
notifications; the CLI, the API, notifications and e-mail name the asset and its sensors; an
asset with alerts is not removed."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.errors import Refused
from plantcast.core.types import Source
from plantcast.notify import add_destination
from plantcast.notify.mail import compose
from plantcast.services import assets as asset_service
from plantcast.services.apikeys import create_key
from plantcast.store import alerts as alert_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = pd.Timestamp("2026-01-01", tz="UTC")
STEP = pd.Timedelta("1min")
RANKED = {"flow": 0.7, "current": 0.2, "speed": 0.1}

# alerts as plantcast made them before asset alerts (sensor_id NOT NULL), on SQLite
OLD_SQLITE_ALERTS = """CREATE TABLE alerts (
    id INTEGER NOT NULL, sensor_id INTEGER NOT NULL, ts BIGINT NOT NULL, ends_at BIGINT,
    detector VARCHAR(50) NOT NULL, score FLOAT NOT NULL, value FLOAT NOT NULL, expected FLOAT,
    status VARCHAR(20) NOT NULL, created_at BIGINT NOT NULL,
    detectors JSON NOT NULL DEFAULT '[]',
    PRIMARY KEY (id), FOREIGN KEY(sensor_id) REFERENCES sensors (id))"""


def _pump(store):
    for name in ("speed", "flow", "current"):
        store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP)
    return asset_service.create_asset(store, "pump", ["speed", "flow", "current"])


def _asset_alert(store, asset_id, **fields):
    with store.write() as conn:
        return alert_rows.insert_alert(
            conn,
            None,
            asset_id=asset_id,
            ts=START,
            detector="pca_q",
            score=12.5,
            value=12.5,
            contributors=RANKED,
            **fields,
        )


def _make_old(store):
    """Turn this store's alerts table into the one an older plantcast made."""
    if store.dialect == "sqlite":
        raw = store.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("DROP TABLE alerts")
            cur.execute(OLD_SQLITE_ALERTS)
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()
        return
    with store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN asset_id")
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN contributors")
        conn.exec_driver_sql("ALTER TABLE alerts ALTER COLUMN sensor_id SET NOT NULL")


def test_an_older_alerts_table_is_upgraded_keeping_alerts_and_notifications(store):
    sid = store.ensure_sensor("old", source=Source.IMPORTED, interval=STEP).id
    _make_old(store)
    columns = {c["name"]: c for c in inspect(store.engine).get_columns("alerts")}
    assert not columns["sensor_id"]["nullable"] and "asset_id" not in columns
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    when = 0 if store.dialect == "sqlite" else START.to_pydatetime()  # as each stores it
    with store.write() as conn:
        conn.execute(
            text(
                "INSERT INTO alerts (sensor_id, ts, detector, score, value, status,"
                " created_at, detectors) VALUES (:sid, :ts, 'stuck', 9.5, 1.0, 'open', :ts, '[]')"
            ),
            {"sid": sid, "ts": when},
        )
        conn.execute(
            text(
                "INSERT INTO notifications (destination_id, alert_id, event, idempotency_key,"
                " body, created_at, attempts, next_attempt_at) SELECT d.id, a.id, 'opened',"
                " 'k1', '{}', :ts, 0, :ts FROM notify_destinations d, alerts a"
            ),
            {"ts": when},
        )

    with store.read() as conn:
        kept = conn.execute(text("SELECT id FROM alerts")).scalar_one()
    done = store.init()
    assert any("alerts" in d and "sensor_id" in d for d in done), done
    assert store.init() == []  # nothing left to do
    columns = {c["name"]: c for c in inspect(store.engine).get_columns("alerts")}
    assert columns["sensor_id"]["nullable"] and {"asset_id", "contributors"} <= set(columns)
    (old,) = store.list_alerts(sensor_id=sid)
    assert old.id == kept and old.detectors == {"stuck": 9.5}
    assert old.asset_id is None and old.contributors == {}
    with store.read() as conn:
        assert [r["alert_id"] for r in alert_rows.outbox.list_outbox(conn)] == [kept]

    asset = _pump(store)
    new_id = _asset_alert(store, asset.id)
    assert new_id > kept  # ids go on after the kept ones
    (made,) = store.list_alerts(asset_id=asset.id)
    assert made.sensor_id is None and made.contributors == RANKED


def test_an_asset_alert_names_its_asset_and_ranked_contributors(store):
    asset = _pump(store)
    alert_id = _asset_alert(store, asset.id)
    (alert,) = store.list_alerts(asset_id=asset.id)
    assert alert.id == alert_id and alert.sensor_id is None and alert.asset_id == asset.id
    assert list(alert.contributors) == ["flow", "current", "speed"]  # largest share first
    assert store.count_alerts(asset_id=asset.id) == 1
    flow = store.get_sensor("flow").id
    assert store.list_alerts(sensor_id=flow) == []  # a sensor's listing: its own alerts only
    with store.write() as conn, pytest.raises(ValueError, match="either its sensor or its asset"):
        alert_rows.insert_alert(
            conn, flow, asset_id=asset.id, ts=START, detector="x", score=1.0, value=1.0
        )


def test_cli_api_notifications_and_mail_name_the_asset_and_its_sensors(store, db_url):
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    asset = _pump(store)
    alert_id = _asset_alert(store, asset.id)
    ranked = [{"sensor": s, "share": v} for s, v in RANKED.items()]

    runner = CliRunner()
    out = runner.invoke(
        cli, ["alerts", "--database-url", db_url, "--asset", "pump", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    (listed,) = json.loads(out.output)["alerts"]
    assert listed["asset"] == "pump" and listed["sensor"] is None
    assert listed["contributors"] == ranked
    table = runner.invoke(cli, ["alerts", "--database-url", db_url])
    assert table.exit_code == 0, table.output
    assert "asset pump" in table.output and "flow 70%" in table.output
    csv_out = runner.invoke(cli, ["alerts", "--database-url", db_url, "--format", "csv"])
    assert '"flow:0.70,current:0.20,speed:0.10"' in csv_out.output
    unknown = runner.invoke(cli, ["alerts", "--database-url", db_url, "--asset", "nope"])
    assert unknown.exit_code != 0 and "no asset named 'nope'" in unknown.output
    assert "Traceback" not in unknown.output

    token = create_key(store, "ops", "write")[1]
    client = TestClient(create_app(store=store))
    auth = {"Authorization": f"Bearer {token}"}
    body = client.get("/v1/alerts", params={"asset": "pump"}, headers=auth).json()
    assert body["total"] == 1 and body["alerts"][0]["id"] == alert_id
    assert body["alerts"][0]["asset"] == "pump" and body["alerts"][0]["contributors"] == ranked
    missing = client.get("/v1/alerts", params={"asset": "nope"}, headers=auth)
    assert missing.status_code == 404
    acked = client.post(f"/v1/alerts/{alert_id}/ack", headers=auth).json()
    assert acked["asset"] == "pump" and acked["status"] == "acknowledged"

    with store.read() as conn:
        notes = alert_rows.outbox.list_outbox(conn, alert_id=alert_id)
    assert [n["event"] for n in notes] == ["opened", "acknowledged"]
    payload = json.loads(notes[0]["body"])["alert"]
    assert payload["asset"] == "pump" and payload["sensor"] is None
    assert payload["contributors"] == ranked
    mail = compose(notes[0]["body"], key="k", to=["ops@example.com"], sender="p@example.com")
    assert mail["Subject"] == (
        f"[plantcast] alert {alert_id} opened: asset pump pca_q (flow 70%, current 20%, speed 10%)"
    )


def test_an_asset_with_alerts_is_not_removed(store, db_url):
    asset = _pump(store)
    _asset_alert(store, asset.id)
    with pytest.raises(Refused, match="has alerts"):
        asset_service.remove_asset(store, "pump")
    out = CliRunner().invoke(cli, ["asset", "remove", "pump", "--database-url", db_url])
    assert out.exit_code != 0 and "asset 'pump' has alerts" in out.output
    assert "Traceback" not in out.output
    token = create_key(store, "ops", "admin")[1]
    client = TestClient(create_app(store=store))
    gone = client.delete("/v1/assets/pump", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 409
    assert [a.name for a in store.list_assets()] == ["pump"]
    asset_service.create_asset(store, "spare", ["speed"])
    assert asset_service.remove_asset(store, "spare").name == "spare"  # one without alerts goes
