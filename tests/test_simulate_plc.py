"""The simulated PLC: the demo sensors' models and stored events in real time, published to a
real Mosquitto as the JSON connect mqtt reads; demo --via mqtt without a broker says so."""

from __future__ import annotations

import json
import signal
import threading

import paho.mqtt.client as paho
import pandas as pd
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_broker import Mosquitto, free_port, wait_for
from plantcast.cli.main import cli
from plantcast.core.types import EventKind
from plantcast.ingest.backfill import backfill
from plantcast.ingest.connectors.plc import SimulatedPlc, StoredEvents, demo_plc
from plantcast.ingest.connectors.plc_mqtt import payload
from plantcast.ingest.simulated import ensure_simulated_sensor
from plantcast.signals.presets import DEMO_SENSORS, model_for

T0 = pd.Timestamp("2026-11-02T08:00:00", tz="UTC")


@pytest.fixture
def keep_signal_handlers():
    """The commands install SIGINT/SIGTERM handlers: put pytest's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_readings_are_the_demo_models_on_the_clock():
    plc = SimulatedPlc(interval=pd.Timedelta("1s"), start=T0 + pd.Timedelta("300ms"))
    first, second = plc.tick(), plc.tick()
    assert [r.sensor for r in first] == list(DEMO_SENSORS)
    assert {r.ts for r in first} == {T0} and {r.ts for r in second} == {T0 + pd.Timedelta("1s")}
    for r in first + second:
        assert r.value == model_for(r.sensor).values(pd.DatetimeIndex([r.ts]))[0]


def test_injected_events_apply_as_in_the_streamer(store):
    ids = {n: ensure_simulated_sensor(store, n, pd.Timedelta("1s")).id for n in DEMO_SENSORS}
    store.add_event(ids["reservoir_pressure"], EventKind.LEVEL_SHIFT, T0, magnitude=20.0)
    store.add_event(
        ids["wellhead_temperature"], EventKind.DROPOUT, T0, ends_at=T0 + pd.Timedelta("1s")
    )
    plc = SimulatedPlc(interval=pd.Timedelta("1s"), start=T0, events=StoredEvents(store))
    first = {r.sensor: r.value for r in plc.tick()}
    at = pd.DatetimeIndex([T0])
    assert first["reservoir_pressure"] == model_for("reservoir_pressure").values(at)[0] + 20
    assert "wellhead_temperature" not in first  # a dropout publishes nothing
    assert first["export_flow"] == model_for("export_flow").values(at)[0]
    second = {r.sensor: r.value for r in plc.tick()}
    assert set(second) == set(DEMO_SENSORS)  # the dropout has ended


def test_an_accelerated_plc_resumes_after_the_stored_history(store):
    step = pd.Timedelta("30min")
    end = pd.Timestamp("2026-11-01T12:00", tz="UTC")
    for name in DEMO_SENSORS:
        backfill(store, name, days=1, interval=step, end=end)
    plc = demo_plc(store, interval=pd.Timedelta("1s"), step=step)
    assert {r.ts for r in plc.tick()} == {end + step}
    assert {r.ts for r in plc.tick()} == {end + 2 * step}


def test_the_payload_is_what_connect_mqtt_reads():
    from plantcast.ingest.connectors.payloads import JsonFields, parse_json

    (reading,) = SimulatedPlc({"reservoir_pressure": model_for("x")}, start=T0).tick()
    body = payload(reading)
    assert json.loads(body) == {"ts": "2026-11-02T08:00:00Z", "value": reading.value}
    ts_us, value = parse_json(body, JsonFields(), received_us=0)
    assert (ts_us, value) == (T0.value // 1_000, reading.value)  # the reading's time, not receipt


def test_simulate_plc_mqtt_publishes_json_at_qos1(tmp_path, keep_signal_handlers):
    broker = Mosquitto(tmp_path)
    broker.start()
    received: list[tuple[str, bytes, int]] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        with lock:
            received.append((msg.topic, msg.payload, msg.qos))

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="plc-test-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("plantcast/demo/#", qos=1)
    try:
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        assert subscribed.wait(10), "the test subscriber did not subscribe"
        result = CliRunner().invoke(
            cli,
            ["simulate-plc", "mqtt", "--broker", broker.url, "--interval", "0.1s", "--count", "2"],
            env={"PLANTCAST_DATABASE_URL": "", "DATABASE_URL": ""},
        )
        assert result.exit_code == 0, result.output
        assert "published 6 reading(s) in 2 tick(s), 6 acked" in result.output
        wait_for(lambda: len(received) >= 6, 10, "six messages")
    finally:
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    topics = sorted({t for t, _, _ in received})
    assert topics == sorted(f"plantcast/demo/{n}" for n in DEMO_SENSORS)
    assert {q for _, _, q in received} == {1}
    for topic, body, _ in received:
        doc = json.loads(body)
        assert set(doc) == {"ts", "value"} and doc["ts"].endswith("Z")
        ts = pd.Timestamp(doc["ts"])
        name = topic.rsplit("/", 1)[1]
        assert doc["value"] == model_for(name).values(pd.DatetimeIndex([ts]))[0]


def test_simulate_plc_mqtt_without_a_broker_is_one_line(keep_signal_handlers):
    closed = f"mqtt://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli,
        ["simulate-plc", "mqtt", "--broker", closed, "--count", "1"],
        env={"PLANTCAST_DATABASE_URL": "", "DATABASE_URL": ""},
    )
    assert result.exit_code == 1
    assert f"Error: no MQTT broker answers at {closed}" in result.output
    assert "Traceback" not in result.output


def test_demo_via_mqtt_says_when_no_broker_answers(monkeypatch, sqlite_url):
    from plantcast.cli import app_commands

    port = free_port()
    monkeypatch.setattr(app_commands, "DEMO_BROKER", ("127.0.0.1", port))
    result = CliRunner().invoke(cli, ["demo", "--via", "mqtt", "--database-url", sqlite_url])
    assert result.exit_code == 1
    assert f"needs an MQTT broker on 127.0.0.1:{port} and none answers there" in result.output


def test_a_real_time_plc_ticks_at_its_readings_times():
    plc = SimulatedPlc(interval=pd.Timedelta("200ms"))
    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    plc.run(lambda rs: seen.append((pd.Timestamp.now(tz="UTC"), rs[0].ts)), count=3)
    stamps = [ts for _, ts in seen]
    assert all(ts.value % 200_000_000 == 0 for ts in stamps)  # on the 200 ms grid
    assert stamps == sorted(set(stamps))
    for at, ts in seen:  # published at (not before) its time, and not seconds late
        assert pd.Timedelta(0) <= at - ts < pd.Timedelta("1s")
