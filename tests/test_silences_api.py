"""/v1/silences, /v1/annotations and /v1/sensors/{name}/limits|silences: roles, audit rows."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from plantcast.api import create_app
from plantcast.core.types import Source
from plantcast.services import audit, users
from plantcast.services.apikeys import create_key

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = pd.Timestamp("2026-03-07", tz="UTC")


@pytest.fixture
def api(store):
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        users.add_user(store, name, role, actor="setup")
    store.ensure_sensor("p1", source=Source.IMPORTED, interval=pd.Timedelta("1h"))
    client = TestClient(create_app(store=store))
    client.tokens = {n: create_key(store, f"{n}-key", user=n)[1] for n in ("vera", "otto", "ada")}
    return client


def _as(client, name: str) -> dict:
    return {"Authorization": f"Bearer {client.tokens[name]}"}


def _changes(store) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in audit.entries(store) if e.actor not in {"setup", "system"}]


def test_operators_silence_and_annotate_viewers_only_read(api, store):
    otto, vera = _as(api, "otto"), _as(api, "vera")
    body = {"sensor": "p1", "reason": "seal swap", "start": "2026-03-07T06:00:00Z"}
    assert (
        api.post("/v1/silences", json={**body, "duration": "8h"}, headers=vera).status_code == 403
    )
    made = api.post("/v1/silences", json={**body, "duration": "8h"}, headers=otto)
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["scope"] == "sensor" and silence["author"] == "otto"
    weekly = api.post(
        "/v1/silences",
        json={
            "all": True,
            "reason": "PM",
            "every": "sat 06:00 2h",
            "start": "2026-03-01T00:00:00Z",
        },
        headers=otto,
    )
    assert weekly.status_code == 201 and weekly.json()["recurrence"] == "sat 06:00 2h"
    bad = api.post("/v1/silences", json={"sensor": "p1", "reason": "x"}, headers=otto)
    assert bad.status_code == 422 and "needs an end" in bad.json()["detail"]
    assert (
        api.post(
            "/v1/silences", json={**body, "sensor": "nope", "duration": "1h"}, headers=otto
        ).status_code
        == 404
    )
    listed = api.get("/v1/silences", params={"all": "true"}, headers=vera).json()
    assert [s["id"] for s in listed] == [weekly.json()["id"], silence["id"]]
    spans = api.get(
        "/v1/sensors/p1/silences",
        params={"start": "2026-03-07T00:00:00Z", "end": "2026-03-08T00:00:00Z"},
        headers=vera,
    ).json()
    assert [(w["start"], w["end"]) for w in spans] == [
        ("2026-03-07T06:00:00Z", "2026-03-07T14:00:00Z"),
        ("2026-03-07T06:00:00Z", "2026-03-07T08:00:00Z"),
    ]
    assert [w["scope"] for w in spans] == ["sensor", "all"]
    ended = api.post(f"/v1/silences/{weekly.json()['id']}/end", headers=otto)
    assert ended.status_code == 200 and ended.json()["ended_at"] is not None
    assert api.post(f"/v1/silences/{weekly.json()['id']}/end", headers=otto).status_code == 409

    note = api.post(
        "/v1/annotations",
        json={"sensor": "p1", "text": "seal replaced", "at": "2026-03-07T07:00:00Z"},
        headers=otto,
    )
    assert note.status_code == 201 and note.json()["author"] == "otto"
    nid = note.json()["id"]
    patched = api.patch(f"/v1/annotations/{nid}", json={"text": "seal and bearing"}, headers=otto)
    assert patched.status_code == 200 and patched.json()["text"] == "seal and bearing"
    got = api.get("/v1/annotations", params={"sensor": "p1"}, headers=vera).json()
    assert [n["text"] for n in got] == ["seal and bearing"]
    assert api.delete(f"/v1/annotations/{nid}", headers=vera).status_code == 403
    assert api.delete(f"/v1/annotations/{nid}", headers=otto).status_code == 204
    assert api.delete(f"/v1/annotations/{nid}", headers=otto).status_code == 404
    assert _changes(store) == [
        ("otto", "annotation.delete"),
        ("otto", "annotation.edit"),
        ("otto", "annotation.add"),
        ("otto", "silence.end"),
        ("otto", "silence.add"),
        ("otto", "silence.add"),
    ]


def test_admins_set_limits_operators_read_them(api, store):
    otto, ada = _as(api, "otto"), _as(api, "ada")
    assert api.get("/v1/sensors/p1/limits", headers=otto).json()["high"] is None
    body = {"high": 80.0, "high_high": 95.0, "deadband": 1.5}
    assert api.put("/v1/sensors/p1/limits", json=body, headers=otto).status_code == 403
    put = api.put("/v1/sensors/p1/limits", json=body, headers=ada)
    assert put.status_code == 200, put.text
    assert put.json()["high_high"] == 95.0 and put.json()["updated_by"] == "ada"
    shown = api.get("/v1/sensors/p1/limits", headers=otto).json()
    assert (shown["high"], shown["deadband"], shown["low"]) == (80.0, 1.5, None)
    wrong = api.put("/v1/sensors/p1/limits", json={"low": 90.0, "high": 80.0}, headers=ada)
    assert wrong.status_code == 422 and "must be below" in wrong.json()["detail"]
    assert api.put("/v1/sensors/nope/limits", json=body, headers=ada).status_code == 404
    assert api.delete("/v1/sensors/p1/limits", headers=ada).status_code == 204
    assert api.delete("/v1/sensors/p1/limits", headers=ada).status_code == 404
    assert _changes(store) == [("ada", "limit.clear"), ("ada", "limit.set")]
