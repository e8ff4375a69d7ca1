"""Every change a person makes writes exactly one audit entry: each mutating command of the
CLI and each mutating route of the API is run on a plant and the audit log must grow by one,
naming who did it. The commands and routes are enumerated from the CLI group and the app, so a
new one fails here until it is listed: as audited, or exempt with the reason it is not a
person's change (or changes nothing)."""

from __future__ import annotations

import warnings

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.notify import add_destination
from plantcast.services import audit, notes, silences, users
from plantcast.services.apikeys import create_key
from plantcast.services.assets import create_asset
from plantcast.store import Store
from plantcast.store import alerts as alert_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = pd.Timestamp("2026-03-01", tz="UTC")
WHO = "shift-lead"

# -- the command line ---------------------------------------------------------------------
# Each audited command, as arguments ("DB" is the database URL); run on a fresh plant.
CLI_AUDITED: dict[str, list[str]] = {
    "alerts ack": ["alerts", "--database-url", "DB", "ack", "1"],
    "alerts resolve": ["alerts", "--database-url", "DB", "resolve", "1"],
    "alerts assign": ["alerts", "--database-url", "DB", "assign", "1", "otto"],
    "alerts unassign": ["alerts", "--database-url", "DB", "unassign", "1"],
    "alerts comment": ["alerts", "--database-url", "DB", "comment", "1", "on it"],
    "alerts label": ["alerts", "--database-url", "DB", "label", "1", "false_alarm"],
    "users add": ["users", "add", "--database-url", "DB", "pat", "--role", "operator"],
    "users set-role": ["users", "set-role", "--database-url", "DB", "otto", "admin"],
    "users disable": ["users", "disable", "--database-url", "DB", "otto"],
    "apikey create": ["apikey", "create", "--database-url", "DB", "--name", "k", "--user", "otto"],
    "apikey revoke": ["apikey", "revoke", "--database-url", "DB", "1"],
    "asset create": ["asset", "create", "--database-url", "DB", "line", "--sensor", "imp"],
    "asset add-sensor": ["asset", "add-sensor", "--database-url", "DB", "pump", "--sensor", "imp3"],
    "asset remove-sensor": [
        "asset", "remove-sensor", "--database-url", "DB", "pump", "--sensor", "imp2"
    ],
    "asset train": [
        "asset", "train", "--database-url", "DB", "pump", "--from", "2026-03-01T00:00Z",
        "--to", "2026-03-02T00:00Z",
    ],
    "asset remove": ["asset", "remove", "--database-url", "DB", "pump"],
    "import": ["import", "--database-url", "DB", "CSV", "--sensor", "fresh"],
    "inject": [
        "inject", "--database-url", "DB", "--sensor", "sim", "--kind", "level_shift",
        "--magnitude", "5",
    ],
    "normalize": ["normalize", "--database-url", "DB", "--sensor", "sim"],
    "silence add": [
        "silence", "add", "--database-url", "DB", "--sensor", "imp", "--reason", "seal swap",
        "--for", "8h",
    ],
    "silence end": ["silence", "end", "--database-url", "DB", "1"],
    "annotate": ["annotate", "--database-url", "DB", "imp", "seal replaced on pump 3"],
    "annotations delete": ["annotations", "--database-url", "DB", "delete", "1"],
    "limits set": ["limits", "set", "--database-url", "DB", "imp", "--high", "150"],
    "limits clear": ["limits", "clear", "--database-url", "DB", "imp"],
    "notify add": [
        "notify", "add", "--database-url", "DB", "mail", "--email", "ops@example.com"
    ],
    "notify remove": ["notify", "remove", "--database-url", "DB", "ops"],
}  # fmt: skip

READS = "reads only"
CLI_EXEMPT: dict[str, str] = {
    "alerts": READS,
    "alerts show": READS,
    "annotations": READS,
    "apikey list": READS,
    "asset list": READS,
    "asset show": READS,
    "audit": READS,
    "config check": READS,
    "config example": READS,
    "dead-letters": READS,
    "evaluate-detectors": "scores scenarios or labels; writes nothing",
    "forecast": READS,
    "forecast list": READS,
    "forecast show": READS,
    "limits show": READS,
    "notify list": READS,
    "readings": READS,
    "seasons": "detected seasons are derived data the models read, not a person's change",
    "sensors": READS,
    "silence list": READS,
    "status": READS,
    "users list": READS,
    "backtest": "writes an HTML report file, nothing in the store",
    "notify test": "sends a test message outside the queue; the store is unchanged",
    "api": "serves the API (its routes are covered below)",
    "dashboard": "serves the page",
    "serve": "runs the plant's components, which do system work",
    "jobs": "the scheduled jobs: system work",
    "detect": "alerts raised by the detectors: system work (the outbox records them)",
    "limits check": "limit alarms raised against readings: system work, as detect",
    "forecast refresh": "derived data (stored forecasts), refitted by the system",
    "notify run": "the sender delivers the outbox: system work",
    "backfill": "simulated history written by the simulator: machine data",
    "stream": "the simulator's live readings: machine data",
    "demo": "a demo plant of simulated sensors: machine data",
    "connect mqtt": "a connector stores what the plant publishes: machine data",
    "connect opcua": "a connector stores what the plant serves: machine data",
    "simulate-plc mqtt": "a simulated PLC: publishes, stores nothing",
    "simulate-plc opcua": "a simulated PLC: serves, stores nothing",
    "init": "creates the schema; no plant object changes",
    "migrate": "upgrades the schema; no plant object changes",
    "retention": "storage upkeep of old readings by whoever runs the database",
    "backup": "copies the database out; nothing changes",
    "restore": "replaces the whole database, its audit log included",
}


def _leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found[path] = command  # `alerts`, `annotations`: a listing of their own
            found.update(_leaves(command, path + " "))
        else:
            found[path] = command
    return found


def test_every_command_is_audited_or_exempt_with_a_reason():
    leaves = set(_leaves(cli))
    listed = set(CLI_AUDITED) | set(CLI_EXEMPT)
    assert not set(CLI_AUDITED) & set(CLI_EXEMPT)
    assert sorted(leaves - listed) == [], "new commands: list them as audited or exempt"
    assert sorted(listed - leaves) == []


def _plant(store: Store) -> None:
    """A plant with something for every command to change."""
    store.init()
    users.add_user(store, "otto", "operator", actor="setup")
    for name in ("imp", "imp2", "imp3"):
        s = store.ensure_sensor(name, source=Source.IMPORTED, interval=pd.Timedelta("1h"))
        index = pd.date_range(START, periods=48, freq="1h")
        store.write_readings(s.id, pd.Series(100.0, index=index))
    store.ensure_sensor("sim", source=Source.SIMULATED, interval=pd.Timedelta("30min"))
    sid = store.get_sensor("imp").id
    with store.write() as conn:
        alert_rows.insert_alert(
            conn, sid, detector="residual_z", ts=START, ends_at=None, score=6.0, value=130.0
        )
    create_asset(store, "pump", ["imp", "imp2"], actor="setup")
    create_key(store, "grafana", "read", actor="setup")
    silences.add_silence(store, reason="test", author="setup", sensor="imp", duration="1h")
    notes.annotate(store, "imp", "a note", author="setup")
    from plantcast.services.limits import set_limits

    set_limits(store, "imp", author="setup", levels={"high": 120.0})
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    from plantcast.services.injection import inject

    inject(store, "sim", "level_shift", magnitude=3.0)


@pytest.mark.parametrize("command", sorted(CLI_AUDITED))
def test_each_mutating_command_writes_one_audit_entry(command, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", WHO)
    with Store.open(db_url) as store:
        _plant(store)
        before = audit.entries(store, limit=10_000)
    csv = tmp_path / "flow.csv"
    csv.write_text("ts,value\n2026-03-01T00:00:00Z,1.0\n2026-03-01T01:00:00Z,2.0\n")
    args = [{"DB": db_url, "CSV": str(csv)}.get(a, a) for a in CLI_AUDITED[command]]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, (command, done.output)
    with Store.open(db_url) as store:
        after = audit.entries(store, limit=10_000)
    new = after[: len(after) - len(before)]
    assert len(new) == 1, (command, [(e.action, e.target) for e in new])
    assert new[0].actor == WHO


# -- the API ------------------------------------------------------------------------------
# Each mutating route: (method, path, JSON body); run on a fresh plant by an admin's key.
API_AUDITED: dict[str, tuple[str, str, dict | None]] = {
    "POST /v1/sensors": ("POST", "/v1/sensors", {"name": "line3", "interval": "1min"}),
    "POST /v1/sensors/{name}/readings": (
        "POST",
        "/v1/sensors/imp/readings",
        {"readings": [{"ts": "2026-03-05T00:00:00Z", "value": 1.0}]},
    ),
    "POST /v1/sensors/{name}/events": (
        "POST",
        "/v1/sensors/sim/events",
        {"kind": "level_shift", "magnitude": 4},
    ),
    "POST /v1/sensors/{name}/normalize": ("POST", "/v1/sensors/sim/normalize", None),
    "POST /v1/alerts/{alert_id}/ack": ("POST", "/v1/alerts/1/ack", None),
    "POST /v1/alerts/{alert_id}/resolve": ("POST", "/v1/alerts/1/resolve", None),
    "POST /v1/alerts/{alert_id}/comments": ("POST", "/v1/alerts/1/comments", {"text": "x"}),
    "PUT /v1/alerts/{alert_id}/assignee": ("PUT", "/v1/alerts/1/assignee", {"assignee": "otto"}),
    "PUT /v1/alerts/{alert_id}/label": ("PUT", "/v1/alerts/1/label", {"label": "real"}),
    "POST /v1/alerts/bulk": ("POST", "/v1/alerts/bulk", {"ids": [1], "action": "acknowledge"}),
    "POST /v1/assets": ("POST", "/v1/assets", {"name": "line", "sensors": ["imp"]}),
    "DELETE /v1/assets/{name}": ("DELETE", "/v1/assets/pump", None),
    "POST /v1/assets/{name}/sensors/{sensor}": ("POST", "/v1/assets/pump/sensors/imp3", None),
    "DELETE /v1/assets/{name}/sensors/{sensor}": ("DELETE", "/v1/assets/pump/sensors/imp2", None),
    "PUT /v1/assets/{name}/training": (
        "PUT",
        "/v1/assets/pump/training",
        {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"},
    ),
    "POST /v1/users": ("POST", "/v1/users", {"name": "pat", "role": "viewer"}),
    "PUT /v1/users/{name}/role": ("PUT", "/v1/users/otto/role", {"role": "admin"}),
    "POST /v1/users/{name}/disable": ("POST", "/v1/users/otto/disable", None),
    "POST /v1/keys": ("POST", "/v1/keys", {"name": "k2", "user": "otto"}),
    "DELETE /v1/keys/{key_id}": ("DELETE", "/v1/keys/1", None),
    "POST /v1/silences": (
        "POST",
        "/v1/silences",
        {"sensor": "imp", "reason": "seal swap", "duration": "8h"},
    ),
    "POST /v1/silences/{silence_id}/end": ("POST", "/v1/silences/1/end", None),
    "POST /v1/annotations": ("POST", "/v1/annotations", {"sensor": "imp", "text": "note"}),
    "PATCH /v1/annotations/{annotation_id}": ("PATCH", "/v1/annotations/1", {"text": "edited"}),
    "DELETE /v1/annotations/{annotation_id}": ("DELETE", "/v1/annotations/1", None),
    "PUT /v1/sensors/{name}/limits": ("PUT", "/v1/sensors/imp/limits", {"high": 150.0}),
    "DELETE /v1/sensors/{name}/limits": ("DELETE", "/v1/sensors/imp/limits", None),
}
API_EXEMPT: dict[str, str] = {}  # every mutating route is a person's change


def _routes() -> set[str]:
    app = create_app(store=Store.open("sqlite://"))
    return {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method not in ("get", "head")
    }


def test_every_mutating_route_is_audited_or_exempt_with_a_reason():
    routes = _routes()
    listed = set(API_AUDITED) | set(API_EXEMPT)
    assert sorted(routes - listed) == [], "new routes: list them as audited or exempt"
    assert sorted(listed - routes) == []


@pytest.mark.parametrize("route", sorted(API_AUDITED))
def test_each_mutating_route_writes_one_audit_entry_as_the_keys_user(route, store):
    _plant(store)
    users.add_user(store, "ada", "admin", actor="setup")
    token = create_key(store, "ada-key", user="ada")[1]
    client = TestClient(create_app(store=store))
    before = len(audit.entries(store, limit=10_000))
    method, path, body = API_AUDITED[route]
    answer = client.request(method, path, json=body, headers={"X-API-Key": token})
    assert answer.status_code < 300, (route, answer.text)
    new = audit.entries(store, limit=10_000)[: len(audit.entries(store, limit=10_000)) - before]
    assert len(new) == 1, (route, [(e.action, e.target) for e in new])
    assert new[0].actor == "ada"
