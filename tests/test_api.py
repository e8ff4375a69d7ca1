"""The REST API on SQLite and PostgreSQL: every route with and without keys and scopes,
problem+json errors naming the field, limits named, all-or-nothing batches, cursor pages."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from plantcast.api import create_app
from plantcast.core.types import AlertStatus, Source
from plantcast.ingest.backfill import backfill
from plantcast.services.apikeys import create_key
from plantcast.store import alerts as alert_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SIM = "reservoir_pressure"
END = pd.Timestamp("2026-01-15", tz="UTC")
STEP = pd.Timedelta("30min")
PROBLEM = "application/problem+json"


@pytest.fixture
def api(store):
    backfill(store, SIM, days=7, interval=pd.Timedelta("30min"), end=END)
    keys = {scope: create_key(store, f"test-{scope}", scope)[1] for scope in ("read", "write")}
    keys["admin"] = create_key(store, "test-admin", "admin")[1]
    client = TestClient(create_app(store=store))
    client.keys = keys
    client.store = store
    return client


def _h(client, scope="read", how="bearer"):
    token = client.keys[scope]
    return {"Authorization": f"Bearer {token}"} if how == "bearer" else {"X-API-Key": token}


def _problem(r, status, field=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("urn:plantcast:problem:")
    assert body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def _alerts(store, n):
    sid = store.get_sensor(SIM).id
    with store.write() as conn:
        for i in range(n):
            ts = END - pd.Timedelta(hours=i // 2)  # pairs share a start time: ties for the cursor
            alert_rows.insert_alert(
                conn, sid, ts=ts, detector=f"d{i % 2}", score=5.0 + i, value=100.0, expected=90.0
            )


READ_ROUTES = [
    "/v1/sensors",
    f"/v1/sensors/{SIM}",
    f"/v1/sensors/{SIM}/readings",
    f"/v1/sensors/{SIM}/events",
    f"/v1/sensors/{SIM}/detectors",
    "/v1/alerts",
    "/metrics",
]


def test_health_needs_no_key_and_every_other_route_does(api):
    r = api.get("/health")
    assert r.status_code == 200 and r.json()["database"] == "ok"
    for path in READ_ROUTES:
        body = _problem(api.get(path), 401)
        assert "API key" in body["detail"]
        assert api.get(path).headers["www-authenticate"] == "Bearer"
        _problem(api.get(path, headers={"Authorization": "Bearer pc_nope"}), 401)
        assert api.get(path, headers=_h(api, "read")).status_code == 200, path
        assert api.get(path, headers=_h(api, "read", how="header")).status_code == 200, path


def test_write_routes_need_the_write_scope(api):
    posts = [
        ("/v1/sensors", {"name": "line3_flow", "interval": "1min"}),
        (f"/v1/sensors/{SIM}/events", {"kind": "level_shift", "magnitude": 20}),
        (f"/v1/sensors/{SIM}/normalize", None),
        ("/v1/alerts/1/ack", None),
    ]
    for path, body in posts:
        _problem(api.post(path, json=body), 401)
        r = _problem(api.post(path, json=body, headers=_h(api, "read")), 403)
        assert "'operator'" in r["detail"] and r["role"] == "viewer"  # a read key's role
    assert api.post(posts[0][0], json=posts[0][1], headers=_h(api, "write")).status_code == 201
    assert api.post(posts[1][0], json=posts[1][1], headers=_h(api, "admin")).status_code == 201


def test_a_revoked_key_answers_401(api):
    r = api.get("/v1/sensors", headers=_h(api, "read"))
    assert r.status_code == 200
    key = next(k for k in api.store.list_api_keys() if k.name == "test-read")
    assert key.last_used_at is not None  # noted on use
    api.store.revoke_api_key(key.id)
    _problem(api.get("/v1/sensors", headers=_h(api, "read")), 401)
    assert api.get("/v1/sensors", headers=_h(api, "write")).status_code == 200
    # stored hashed: no row holds a token
    assert all(t not in repr(api.store.list_api_keys()) for t in api.keys.values())


def test_sensors_list_get_create(api):
    h = _h(api, "write")
    names = [s["name"] for s in api.get("/v1/sensors", headers=h).json()]
    assert names == [SIM]
    got = api.get(f"/v1/sensors/{SIM}", headers=h).json()
    assert got["source"] == "simulated" and got["interval_seconds"] == 1800
    assert got["last_reading_at"] == "2026-01-15T00:00:00Z"
    _problem(api.get("/v1/sensors/nope", headers=h), 404)
    made = api.post(
        "/v1/sensors", json={"name": "flow", "unit": "m3/h", "interval": "1min"}, headers=h
    )
    assert made.status_code == 201 and made.json()["source"] == "imported"
    _problem(api.post("/v1/sensors", json={"name": "flow"}, headers=h), 409)
    _problem(api.post("/v1/sensors", json={"name": "bad name!"}, headers=h), 422, "name")
    _problem(
        api.post("/v1/sensors", json={"name": "x", "interval": "soon"}, headers=h), 422, "interval"
    )
    assert [s["name"] for s in api.get("/v1/sensors?source=imported", headers=h).json()] == ["flow"]


def test_readings_window_raw_and_buckets_match_the_store(api):
    h = _h(api)
    start, end = "2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"
    raw = api.get(f"/v1/sensors/{SIM}/readings?start={start}&end={end}", headers=h).json()
    sid = api.store.get_sensor(SIM).id
    series = api.store.read_series(sid, pd.Timestamp(start), pd.Timestamp(end))
    assert raw["mode"] == "raw" and len(raw["readings"]) == len(series) == 48
    assert raw["readings"][0]["ts"] == "2026-01-14T00:00:00Z"
    assert raw["readings"][0]["value"] == pytest.approx(series.iloc[0])
    b = api.get(f"/v1/sensors/{SIM}/readings?start={start}&end={end}&buckets=12", headers=h).json()
    assert b["mode"] == "buckets" and b["bucket_seconds"] == 7200 and len(b["buckets"]) == 12
    assert sum(x["count"] for x in b["buckets"]) == 48
    assert b["buckets"][0]["mean"] == pytest.approx(series.iloc[:4].mean())
    assert b["buckets"][0]["min"] <= b["buckets"][0]["mean"] <= b["buckets"][0]["max"]
    # default: the last day up to the latest reading
    last = api.get(f"/v1/sensors/{SIM}/readings", headers=h).json()
    assert last["readings"][-1]["ts"] == "2026-01-15T00:00:00Z" and len(last["readings"]) == 48
    # offsets are RFC 3339 too
    off = api.get(
        f"/v1/sensors/{SIM}/readings",
        params={"start": "2026-01-14T01:00:00+01:00", "end": "2026-01-14T02:00:00+01:00"},
        headers=h,
    ).json()
    assert [r["ts"] for r in off["readings"]] == ["2026-01-14T00:00:00Z", "2026-01-14T00:30:00Z"]


def test_readings_window_errors_and_limits(api):
    h = _h(api)
    url = f"/v1/sensors/{SIM}/readings"
    _problem(api.get(url, params={"start": "yesterday"}, headers=h), 422, "start")
    _problem(api.get(url, params={"start": "2026-01-14T00:00:00"}, headers=h), 422, "start")
    _problem(
        api.get(
            url, params={"start": "2026-01-15T00:00:00Z", "end": "2026-01-14T00:00:00Z"}, headers=h
        ),
        422,
        "end",
    )
    too_long = {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "buckets": 10}
    body = _problem(api.get(url, params=too_long, headers=h), 422, "start")
    assert body["limit"] == 366 and "366 days" in body["detail"]
    body = _problem(api.get(url, params={"buckets": 10_001}, headers=h), 422, "buckets")
    far = {"start": "9000-01-01T00:00:00Z", "end": "9000-01-02T00:00:00Z"}
    _problem(api.get(url, params=far, headers=h), 422, "end")
    _problem(api.get("/v1/sensors/nope/readings", headers=h), 404)


def test_a_raw_window_over_the_limit_asks_for_buckets(api, monkeypatch):
    from plantcast.api import limits

    monkeypatch.setattr(limits, "MAX_RAW_READINGS", 10)
    h = _h(api)
    body = _problem(api.get(f"/v1/sensors/{SIM}/readings", headers=h), 422, "buckets")
    assert body["limit"] == 10 and "buckets" in body["detail"]
    assert api.get(f"/v1/sensors/{SIM}/readings?buckets=5", headers=h).status_code == 200


def test_post_readings_json_and_csv_all_or_nothing(api):
    h = _h(api, "write")
    api.post("/v1/sensors", json={"name": "flow", "interval": "1min"}, headers=h)
    sid = api.store.get_sensor("flow").id
    ok = {
        "readings": [
            {"ts": "2026-01-01T00:00:00Z", "value": 1.5},
            {"ts": "2026-01-01T01:01:00+01:00", "value": 2},
        ]
    }
    r = api.post("/v1/sensors/flow/readings", json=ok, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2 and r.json()["end"] == "2026-01-01T00:01:00Z"
    assert api.post("/v1/sensors/flow/readings", json=ok, headers=h).status_code == 201  # replay
    assert api.store.count_readings(sid) == 2
    # one bad row: nothing written, the field at fault named
    bad = {
        "readings": [
            {"ts": "2026-01-02T00:00:00Z", "value": 1},
            {"ts": "2026-01-02T00:01:00Z", "value": "x"},
        ]
    }
    _problem(api.post("/v1/sensors/flow/readings", json=bad, headers=h), 422, "readings.1.value")
    naive = {"readings": [{"ts": "2026-01-02T00:00:00", "value": 1}]}
    _problem(api.post("/v1/sensors/flow/readings", json=naive, headers=h), 422, "readings.0.ts")
    twice = {
        "readings": [
            {"ts": "2026-01-03T00:00:00Z", "value": 1},
            {"ts": "2026-01-03T00:00:00Z", "value": 2},
        ]
    }
    body = _problem(
        api.post("/v1/sensors/flow/readings", json=twice, headers=h), 422, "readings.1.ts"
    )
    assert "appears twice" in body["detail"]
    _problem(
        api.post("/v1/sensors/flow/readings", json={"readings": []}, headers=h), 422, "readings"
    )
    assert api.store.count_readings(sid) == 2
    csv_h = {**h, "Content-Type": "text/csv"}
    good = "ts,value\n2026-01-04T00:00:00Z,1\n2026-01-04T00:01:00Z,2\n"
    assert api.post("/v1/sensors/flow/readings", content=good, headers=csv_h).status_code == 201
    broken = "ts,value\n2026-01-05T00:00:00Z,1\n2026-01-05T00:01:00Z,oops\n"
    body = _problem(
        api.post("/v1/sensors/flow/readings", content=broken, headers=csv_h), 422, "value"
    )
    assert body["line"] == 3 and "oops" in body["detail"]
    local = "when,v\n2026-01-06 00:00,1\n"
    r = api.post(
        "/v1/sensors/flow/readings?ts_col=when&value_col=v&tz=Europe/Berlin",
        content=local,
        headers=csv_h,
    )
    assert r.status_code == 201 and r.json()["start"] == "2026-01-05T23:00:00Z"
    assert api.store.count_readings(sid) == 5
    # media type, imported sensors only, unknown sensor
    r = api.post(
        "/v1/sensors/flow/readings", content="x", headers={**h, "Content-Type": "text/plain"}
    )
    _problem(r, 415, "content-type")
    _problem(api.post(f"/v1/sensors/{SIM}/readings", json=ok, headers=h), 409)
    _problem(api.post("/v1/sensors/nope/readings", json=ok, headers=h), 404)
    _problem(api.post("/v1/sensors/flow/readings", json=ok, headers=_h(api, "read")), 403)


def test_a_body_over_the_limit_answers_413_naming_it(store):
    client = TestClient(create_app(store=store, max_body_bytes=1000))
    token = create_key(store, "w", "write")[1]
    h = {"X-API-Key": token, "Content-Type": "text/csv"}
    body = _problem(client.post("/v1/sensors/x/readings", content="a" * 1001, headers=h), 413)
    assert body["limit"] == 1000 and "1,000 bytes" in body["detail"]

    def chunks():  # no Content-Length: counted while read
        for _ in range(20):
            yield b"a" * 100

    _problem(client.post("/v1/sensors/x/readings", content=chunks(), headers=h), 413)


def test_forecast_and_backtest(api):
    h = _h(api)
    r = api.get(f"/v1/sensors/{SIM}/forecast?model=fourier_linear&horizon=3h", headers=h)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["chosen"] == "fourier_linear" and len(f["forecast"]) == 6
    p = f["forecast"][0]
    assert p["ts"] == "2026-01-15T00:30:00Z"
    assert p["lower_95"] <= p["lower_80"] <= p["mean"] <= p["upper_80"] <= p["upper_95"]
    _problem(api.get(f"/v1/sensors/{SIM}/forecast?model=nope", headers=h), 422, "model")
    _problem(api.get(f"/v1/sensors/{SIM}/forecast?horizon=1min", headers=h), 422, "horizon")
    body = _problem(api.get(f"/v1/sensors/{SIM}/forecast?horizon=3650d", headers=h), 422, "horizon")
    assert body["limit"] == 5000
    _problem(api.get(f"/v1/sensors/{SIM}/forecast?horizon=soon", headers=h), 422, "horizon")
    _problem(api.get("/v1/sensors/nope/forecast", headers=h), 404)
    url = f"/v1/sensors/{SIM}/backtest?models=fourier_linear,seasonal_naive&horizon=6h&windows=3"
    b = api.get(url, headers=h).json()
    assert set(b["models"]) == {"fourier_linear", "seasonal_naive"} and b["horizon_steps"] == 12
    assert b["models"]["fourier_linear"]["mae"] > 0
    _problem(api.get(f"/v1/sensors/{SIM}/backtest?models=bogus", headers=h), 422, "models")


def test_auto_says_what_it_chose(api, monkeypatch):
    import functools

    from plantcast.forecast.wrappers import AutoForecaster

    original = AutoForecaster.__init__

    @functools.wraps(original)
    def two_candidates(self, *args, **kw):  # the full set takes ~30 s; the route is the same
        kw["candidates"] = ("seasonal_naive", "fourier_linear")
        original(self, *args, **kw)

    monkeypatch.setattr(AutoForecaster, "__init__", two_candidates)
    r = api.get(f"/v1/sensors/{SIM}/forecast?model=auto&horizon=2h", headers=_h(api))
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["model"] == "auto" and f["chosen"] in {"seasonal_naive", "fourier_linear"}
    assert f["scores"] and len(f["forecast"]) == 4


def test_events_inject_and_normalize_on_simulated_sensors_only(api):
    h = _h(api, "write")
    r = api.post(
        f"/v1/sensors/{SIM}/events", json={"kind": "level_shift", "magnitude": 20}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "level_shift" and r.json()["ends_at"] is None
    active = api.get(f"/v1/sensors/{SIM}/events", headers=h).json()
    assert [e["id"] for e in active] == [r.json()["id"]]
    assert api.post(f"/v1/sensors/{SIM}/normalize", headers=h).json() == {"sensor": SIM, "ended": 1}
    assert api.get(f"/v1/sensors/{SIM}/events", headers=h).json() == []
    _problem(
        api.post(f"/v1/sensors/{SIM}/events", json={"kind": "drift", "magnitude": 2}, headers=h),
        422,
        "duration",
    )
    _problem(
        api.post(f"/v1/sensors/{SIM}/events", json={"kind": "level_shift"}, headers=h),
        422,
        "magnitude",
    )
    _problem(api.post(f"/v1/sensors/{SIM}/events", json={"kind": "melt"}, headers=h), 422, "kind")
    api.post("/v1/sensors", json={"name": "flow"}, headers=h)
    body = _problem(
        api.post("/v1/sensors/flow/events", json={"kind": "spike", "magnitude": 3}, headers=h), 409
    )
    assert "simulated sensors only" in body["detail"]
    _problem(api.post("/v1/sensors/flow/normalize", headers=h), 409)


def test_alerts_pages_by_cursor_and_ack_resolve_like_the_cli(api):
    _alerts(api.store, 7)
    h = _h(api, "write")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/alerts", params=params, headers=h).json()
        assert page["total"] == 7
        seen += [a["id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    every = api.store.list_alerts(limit=100)
    assert seen == [a.id for a in every]  # newest first, each once, ties broken by id
    _problem(api.get("/v1/alerts?cursor=garbage", headers=h), 422, "cursor")
    _problem(api.get("/v1/alerts?limit=0", headers=h), 422, "limit")
    _problem(api.get("/v1/alerts?sensor=nope", headers=h), 404)
    target = seen[0]
    r = api.post(f"/v1/alerts/{target}/ack", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["sensor"] == SIM
    page = api.get("/v1/alerts?status=acknowledged", headers=h).json()
    assert [a["id"] for a in page["alerts"]] == [target] and page["total"] == 1
    assert api.post(f"/v1/alerts/{target}/resolve", headers=h).json()["status"] == "resolved"
    [stored] = [a for a in api.store.list_alerts(limit=100) if a.id == target]
    assert stored.status is AlertStatus.RESOLVED
    _problem(api.post("/v1/alerts/999999/ack", headers=h), 404)
    _problem(api.post("/v1/alerts/0/ack", headers=h), 422, "alert_id")
    _problem(api.post("/v1/alerts/99999999999999/ack", headers=h), 422, "alert_id")
    _problem(api.get("/v1/alerts?status=bogus", headers=h), 422, "status")


def test_detector_status(api):
    from plantcast.services.detection import DETECTORS

    h = _h(api)
    body = api.get(f"/v1/sensors/{SIM}/detectors", headers=h).json()
    assert [d["detector"] for d in body["detectors"]] == list(DETECTORS)
    assert all(d["scored_until"] is None for d in body["detectors"]) and body["open_alerts"] == 0
    sid = api.store.get_sensor(SIM).id
    with api.store.write() as conn:
        alert_rows.set_scored_until(conn, sid, "stuck", END)
    _alerts(api.store, 1)
    body = api.get(f"/v1/sensors/{SIM}/detectors", headers=h).json()
    stuck = next(d for d in body["detectors"] if d["detector"] == "stuck")
    assert stuck["scored_until"] == "2026-01-15T00:00:00Z" and body["open_alerts"] == 1


def test_metrics_count_requests_by_route(api):
    h = _h(api)
    api.get(f"/v1/sensors/{SIM}", headers=h)
    api.get("/v1/sensors/nope", headers=h)
    text = api.get("/metrics", headers=h).text
    assert 'route="/v1/sensors/{name}",status="200"' in text
    assert 'route="/v1/sensors/{name}",status="404"' in text
    assert "plantcast_api_request_seconds_bucket" in text


def test_unknown_routes_and_methods_are_problems_and_docs_are_served(api):
    _problem(api.get("/v1/nothing-here"), 404)
    _problem(api.delete("/v1/sensors", headers=_h(api)), 405)
    schema = api.get("/openapi.json").json()
    assert {
        "/v1/sensors",
        "/v1/sensors/{name}/readings",
        "/v1/alerts",
        "/health",
        "/metrics",
    } <= set(schema["paths"])
    post = schema["paths"]["/v1/sensors/{name}/readings"]["post"]["requestBody"]["content"]
    assert set(post) == {"application/json", "text/csv"}
    assert "ReadingsWindow" in schema["components"]["schemas"]
    assert api.get("/docs").status_code == 200


def test_health_says_when_the_database_is_down(tmp_path):
    from plantcast.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    store.init()
    client = TestClient(create_app(store=store))
    assert client.get("/health").status_code == 200
    store.engine.dispose()
    (tmp_path / "x.db").unlink()
    (tmp_path / "x.db").mkdir()  # a path SQLite cannot open
    r = client.get("/health")
    assert r.status_code == 503 and r.json()["database"] == "unavailable"


# -- the sensors list, malformed bodies, limits named, default windows (issue 16) ----------------
def _statements(store, fn) -> int:
    """How many SQL statements ``fn()`` sends to the store's database."""
    from sqlalchemy import event

    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return len(seen)


def test_the_sensors_list_gives_every_last_reading_in_one_statement(api):
    h = _h(api, "write")
    store = api.store
    listed = lambda: api.get("/v1/sensors", headers=h).json()  # noqa: E731
    listed()  # the key's last use is noted once a minute: let it be noted before counting
    few = _statements(store, listed)
    # sensors with readings in two months (two partitions on PostgreSQL), and one with none
    for i in range(24):
        s = store.ensure_sensor(f"line{i:02d}", source=Source.IMPORTED, interval=STEP)
        times = pd.date_range(END - pd.Timedelta(days=40 - i), periods=3, freq=STEP)
        store.write_readings(s.id, pd.Series(range(3), index=times, dtype=float))
    api.post("/v1/sensors", json={"name": "empty"}, headers=h)
    assert _statements(store, listed) == few  # not one query per sensor
    body = {s["name"]: s["last_reading_at"] for s in listed()}
    assert body[SIM] == "2026-01-15T00:00:00Z" and body["empty"] is None
    assert body["line03"] == "2025-12-09T01:00:00Z"  # END − 37 days + 2 steps
    for name, last in body.items():  # each as GET /v1/sensors/{name} and the store say
        assert api.get(f"/v1/sensors/{name}", headers=h).json()["last_reading_at"] == last
    ids = {s.id: s.name for s in store.list_sensors()}
    got = store.last_readings(list(ids) + list(ids))  # repeated ids: asked once
    expected = {i: store.last_reading(i) for i in ids}
    assert got == {i: r for i, r in expected.items() if r is not None} and len(got) == 25
    assert store.last_readings([]) == {} and store.last_readings([999_999]) == {}


def test_malformed_json_names_the_body_and_says_where(api):
    h = {**_h(api, "write"), "Content-Type": "application/json"}
    body = _problem(api.post("/v1/sensors", content=b'{"name": ', headers=h), 422, "body")
    assert "not valid JSON" in body["detail"] and "line 1 column 10" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["body"]  # no offset posing as a field
    broken = b'{"readings": [\n  {"ts": "2026-01-01T00:00:00Z", "value": 1},\n  }'
    api.post("/v1/sensors", json={"name": "flow"}, headers=h)
    body = _problem(api.post("/v1/sensors/flow/readings", content=broken, headers=h), 422, "body")
    assert "not valid JSON" in body["detail"] and "line 3" in body["detail"], body


def test_a_value_over_its_maximum_names_the_limit(api):
    h = _h(api, "write")
    body = _problem(api.get("/v1/alerts", params={"limit": 501}, headers=h), 422, "limit")
    assert body["limit"] == 500 and "500" in body["detail"]
    body = _problem(
        api.get(f"/v1/sensors/{SIM}/readings", params={"buckets": 10_001}, headers=h),
        422,
        "buckets",
    )
    assert body["limit"] == 10_000
    long = {"kind": "drift", "magnitude": 1, "duration": "400d"}
    body = _problem(api.post(f"/v1/sensors/{SIM}/events", json=long, headers=h), 422, "duration")
    assert body["limit"] == 366
    assert "limit" not in _problem(api.get("/v1/alerts?limit=0", headers=h), 422, "limit")


def test_default_windows_end_on_a_whole_tick_after_the_latest_reading(api):
    h = _h(api, "write")
    url = "/v1/sensors/{}/readings"
    window = api.get(url.format(SIM), headers=h).json()
    assert (window["start"], window["end"]) == ("2026-01-14T00:30:00Z", "2026-01-15T00:30:00Z")
    assert window["readings"][-1]["ts"] == "2026-01-15T00:00:00Z"
    # a reading off the grid: the window ends at the next whole interval and holds it
    api.post("/v1/sensors", json={"name": "flow", "interval": "1min"}, headers=h)
    odd = {"readings": [{"ts": "2026-01-01T00:00:12.345678Z", "value": 1}]}
    assert api.post(url.format("flow"), json=odd, headers=h).status_code == 201
    window = api.get(url.format("flow"), headers=h).json()
    assert (window["start"], window["end"]) == ("2025-12-31T00:01:00Z", "2026-01-01T00:01:00Z")
    assert [r["ts"] for r in window["readings"]] == ["2026-01-01T00:00:12.345678Z"]
    # an interval longer than the window: whole seconds
    api.post("/v1/sensors", json={"name": "weekly", "interval": "7d"}, headers=h)
    weekly = {"readings": [{"ts": "2026-01-04T00:00:00Z", "value": 1}]}
    assert api.post(url.format("weekly"), json=weekly, headers=h).status_code == 201
    window = api.get(url.format("weekly"), headers=h).json()
    assert window["end"] == "2026-01-04T00:00:01Z" and len(window["readings"]) == 1
    # no readings: a day up to now, in whole seconds too
    api.post("/v1/sensors", json={"name": "idle", "interval": "1.5s"}, headers=h)
    window = api.get(url.format("idle"), headers=h).json()
    start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
    assert end - start == pd.Timedelta("1d") and "." not in window["start"] + window["end"]
    assert abs(pd.Timestamp.now(tz="UTC") - end) < pd.Timedelta("1min")
