"""Structured logs: JSON lines naming the component, the sensor and the request id; a
component's plain output wrapped as a record; the API's request id echoed and logged."""

from __future__ import annotations

import json
import logging

from plantcast.core.logs import JsonFormatter, line_record


def test_a_record_is_one_json_line_with_its_fields():
    formatter = JsonFormatter("detect")
    record = logging.LogRecord("plantcast.x", logging.WARNING, __file__, 1, "lag %d s", (7,), None)
    record.sensor = "pump_pressure"
    entry = json.loads(formatter.format(record))
    assert entry["component"] == "detect" and entry["level"] == "warning"
    assert entry["msg"] == "lag 7 s" and entry["sensor"] == "pump_pressure"
    assert entry["ts"].endswith("Z")


def test_a_components_line_becomes_a_record():
    plain = json.loads(line_record("notify", "delivered 3, 0 failed attempt(s)\n"))
    assert plain["component"] == "notify" and plain["msg"] == "delivered 3, 0 failed attempt(s)"
    already = json.loads(line_record("jobs", '{"msg": "job seasons: ok", "job": "seasons"}'))
    assert already == {"msg": "job seasons: ok", "job": "seasons", "component": "jobs"}
    braces = json.loads(line_record("api", "{not json"))
    assert braces["msg"] == "{not json"


def test_the_api_echoes_and_logs_the_request_id(store, caplog):
    from fastapi.testclient import TestClient

    from plantcast.api import create_app

    client = TestClient(create_app(store=store))
    with caplog.at_level(logging.INFO, logger="plantcast.api.access"):
        given = client.get("/health", headers={"X-Request-ID": "plant-42"})
        made = client.get("/health")
    assert given.headers["x-request-id"] == "plant-42"
    assert len(made.headers["x-request-id"]) == 32
    ids = [getattr(r, "request_id", None) for r in caplog.records]
    assert ids == ["plant-42", made.headers["x-request-id"]]
    assert caplog.records[0].getMessage().startswith("GET /health 200")
