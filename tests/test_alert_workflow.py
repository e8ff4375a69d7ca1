"""The alert workflow: acknowledge, resolve, assign, comment and label, on the command line
and the API; each change one transaction with its outbox event and exactly one audit entry."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.errors import InputError, NotFound
from plantcast.core.types import AlertLabel, AlertStatus, Source
from plantcast.notify import add_destination
from plantcast.services import alert_workflow as flow
from plantcast.services import audit, users
from plantcast.services.apikeys import create_key
from plantcast.store import Store
from plantcast.store import alerts as alert_rows
from plantcast.store import notifications as outbox

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = pd.Timestamp("2026-03-01", tz="UTC")


def _alert(store, sensor="p1", hours=0) -> int:
    sid = store.ensure_sensor(sensor, source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    with store.write() as conn:
        return alert_rows.insert_alert(
            conn,
            sid,
            detector="residual_z",
            ts=START + pd.Timedelta(hours=hours),
            ends_at=None,
            score=6.0,
            value=130.0,
            expected=100.0,
        )


def _events(store, alert_id):
    with store.read() as conn:
        rows = outbox.list_outbox(conn, alert_id=alert_id)
    return [(r["event"], json.loads(r["body"])) for r in rows]


def test_each_change_writes_the_change_its_event_and_one_audit_entry(store):
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    users.add_user(store, "ann", "operator", actor="setup")
    a = _alert(store)
    flow.acknowledge(store, a, actor="bob")
    flow.assign(store, a, "ann", actor="bob")
    flow.comment(store, a, "  seal replaced on pump 3 ", actor="ann")
    flow.label(store, a, "false_alarm", actor="ann")
    flow.unassign(store, a, actor="ann")
    flow.resolve(store, a, actor="ann")
    got = flow.detail(store, a)
    assert got.alert.status is AlertStatus.RESOLVED and got.alert.assignee is None
    assert got.alert.label is AlertLabel.FALSE_ALARM and got.sensor == "p1"
    assert [(c.author, c.text) for c in got.comments] == [("ann", "seal replaced on pump 3")]
    assert [(e.actor, e.action) for e in got.history] == [
        ("bob", "alert.acknowledge"),
        ("bob", "alert.assign"),
        ("ann", "alert.comment"),
        ("ann", "alert.label"),
        ("ann", "alert.unassign"),
        ("ann", "alert.resolve"),
    ]
    assert got.history[1].before == {"assignee": None} and got.history[1].after == {
        "assignee": "ann"
    }
    assert got.history[3].after == {"label": "false_alarm"}
    events = _events(store, a)
    assert [e for e, _ in events] == [
        "opened",
        "acknowledged",
        "assigned",
        "commented",
        "labelled",
        "assigned",
        "resolved",
    ]
    bodies = dict(events[2:5])
    assert bodies["assigned"]["alert"]["assignee"] == "ann" and bodies["assigned"]["by"] == "bob"
    assert bodies["commented"]["detail"] == {"comment": "seal replaced on pump 3"}
    assert bodies["labelled"]["alert"]["label"] == "false_alarm"
    assert len(audit.entries(store, target=f"alert:{a}")) == 6


def test_bad_changes_are_refused_and_leave_nothing(store):
    users.add_user(store, "gone", "operator", actor="setup")
    users.disable(store, "gone", actor="setup")
    a, b = _alert(store), _alert(store, hours=1)
    before = len(audit.entries(store))
    with pytest.raises(NotFound, match="no alert with id 999"):
        flow.acknowledge(store, [a, 999, b], actor="bob")  # one unknown: none changes
    assert {x.status for x in flow.alerts_by_id(store, [a, b])} == {AlertStatus.OPEN}
    with pytest.raises(InputError, match="no user named 'zed'"):
        flow.assign(store, a, "zed", actor="bob")
    with pytest.raises(InputError, match="disabled"):
        flow.assign(store, a, "gone", actor="bob")
    with pytest.raises(InputError, match="unknown label 'bogus'"):
        flow.label(store, a, "bogus", actor="bob")
    with pytest.raises(InputError, match="needs some text"):
        flow.comment(store, a, "   ", actor="bob")
    with pytest.raises(InputError, match="needs a value"):
        flow.apply(store, "assign", [a], actor="bob")
    assert len(audit.entries(store)) == before
    assert flow.apply(store, "acknowledge", [a, b, a], actor="bob") == 2
    assert len(audit.entries(store)) == before + 2  # one entry per alert changed


def test_the_command_line_works_alerts_and_filters_them(db_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", "shift-lead")
    with Store.open(db_url) as store:
        store.init()
        users.add_user(store, "ann", "operator", actor="setup")
        a, b, c = _alert(store), _alert(store, hours=1), _alert(store, hours=2)
    run = CliRunner().invoke
    base = ["alerts", "--database-url", db_url]
    for args in (
        ["ack", str(a), str(b)],
        ["assign", str(a), "ann"],
        ["comment", str(a), "looks like the seal"],
        ["label", str(a), "false_alarm"],
        ["label", str(c), "real"],
        ["resolve", str(c)],
    ):
        done = run(cli, [*base, *args])
        assert done.exit_code == 0, (args, done.output)
    shown = json.loads(run(cli, [*base, "show", str(a), "--format", "json"]).stdout)
    assert (shown["status"], shown["assignee"], shown["label"]) == (
        "acknowledged",
        "ann",
        "false_alarm",
    )
    assert shown["comments"][0]["author"] == "shift-lead"
    assert [h["action"] for h in shown["history"]] == [
        "alert.acknowledge",
        "alert.assign",
        "alert.comment",
        "alert.label",
    ]
    text = run(cli, [*base, "show", str(a)])
    assert "looks like the seal" in text.stdout and "false_alarm" in text.stdout
    mine = json.loads(run(cli, [*base, "--assignee", "ann", "--format", "json"]).stdout)
    assert [x["id"] for x in mine["alerts"]] == [a] and mine["total"] == 1
    real = json.loads(run(cli, [*base, "--label", "real", "--format", "json"]).stdout)
    assert [x["id"] for x in real["alerts"]] == [c]
    table = run(cli, [*base])
    assert "assignee" in table.stdout and "ann" in table.stdout
    bad = run(cli, [*base, "assign", str(a), "zed"])
    assert bad.exit_code == 1 and "no user named 'zed'" in bad.output
    missing = run(cli, [*base, "ack", str(b), "999"])
    assert missing.exit_code == 1 and "no alert with id 999" in missing.output
    assert run(cli, [*base, "label", str(a), "bogus"]).exit_code == 2  # click names the choices


@pytest.fixture
def api(store):
    for name, role in (("vera", "viewer"), ("otto", "operator")):
        users.add_user(store, name, role, actor="setup")
    client = TestClient(create_app(store=store))
    client.h = {
        n: {"Authorization": f"Bearer {create_key(store, f'{n}-key', user=n)[1]}"}
        for n in ("vera", "otto")
    }
    return client


def test_the_api_works_alerts_as_the_keys_user(api, store):
    a, b = _alert(store), _alert(store, hours=1)
    otto, vera = api.h["otto"], api.h["vera"]
    assert api.post(f"/v1/alerts/{a}/ack", headers=otto).json()["status"] == "acknowledged"
    made = api.post(f"/v1/alerts/{a}/comments", json={"text": "on it"}, headers=otto)
    assert made.status_code == 201 and made.json()["author"] == "otto"
    put = api.put(f"/v1/alerts/{a}/assignee", json={"assignee": "otto"}, headers=otto)
    assert put.json()["assignee"] == "otto"
    assert api.put(f"/v1/alerts/{a}/label", json={"label": "real"}, headers=otto).json()[
        "label"
    ] == ("real")
    one = api.get(f"/v1/alerts/{a}", headers=vera).json()
    assert one["comments"][0]["text"] == "on it" and one["assignee"] == "otto"
    assert [h["action"] for h in one["history"]] == [
        "alert.acknowledge",
        "alert.comment",
        "alert.assign",
        "alert.label",
    ]
    assert {h["actor"] for h in one["history"]} == {"otto"}
    page = api.get("/v1/alerts", params={"assignee": "otto", "label": "real"}, headers=vera)
    assert [x["id"] for x in page.json()["alerts"]] == [a]
    bulk = api.post(
        "/v1/alerts/bulk", json={"ids": [a, b], "action": "resolve"}, headers=otto
    ).json()
    assert [x["status"] for x in bulk["alerts"]] == ["resolved", "resolved"]
    assert (
        api.put(f"/v1/alerts/{a}/assignee", json={"assignee": None}, headers=otto).json()[
            "assignee"
        ]
        is None
    )
    # a viewer reads but changes nothing: 403 naming the role, and no audit entry
    n = len(audit.entries(store))
    for method, path, body in (
        ("post", f"/v1/alerts/{a}/ack", None),
        ("post", f"/v1/alerts/{a}/comments", {"text": "x"}),
        ("put", f"/v1/alerts/{a}/label", {"label": "real"}),
        ("post", "/v1/alerts/bulk", {"ids": [a], "action": "label", "value": "real"}),
    ):
        denied = api.request(method, path, json=body, headers=vera)
        assert denied.status_code == 403, path
        assert denied.json()["role"] == "viewer" and "alert." in denied.json()["detail"]
    assert len(audit.entries(store)) == n
    assert api.get("/v1/alerts/999", headers=vera).status_code == 404
    bad = api.post("/v1/alerts/bulk", json={"ids": [a], "action": "explode"}, headers=otto)
    assert bad.status_code == 422 and bad.json()["field"] == "action"
    n = len(audit.entries(store))
    gone = api.post("/v1/alerts/bulk", json={"ids": [b, 999], "action": "unassign"}, headers=otto)
    assert gone.status_code == 404 and "999" in gone.json()["detail"]
    assert len(audit.entries(store)) == n  # one unknown id: nothing changed


def test_an_older_alerts_table_gains_the_workflow_columns(store):
    a = _alert(store)
    with store.write() as conn:  # the table as it was before the workflow
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN assignee")
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN label")
    done = store.init()
    assert {"alerts.assignee added", "alerts.label added"} <= set(done)
    assert "alert_comments created" not in done and store.init() == []
    [old] = store.list_alerts()
    assert old.id == a and old.assignee is None and old.label is None
    assert flow.label(store, a, "real", actor="ann")[0].label is AlertLabel.REAL
