"""connect mqtt against a real Mosquitto: nothing lost or doubled across broker restarts and a
SIGKILLed connector; every malformed payload in dead letters while the connector goes on."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_broker import Connector, Mosquitto, make_tls_files, require_mosquitto, wait_for
from plantcast.ingest.connectors import sparkplug
from plantcast.ingest.connectors.payloads import JsonFields, PayloadError, parse_json, parse_ts
from plantcast.ingest.connectors.topics import TopicMap
from plantcast.store import Store

BASE_S = 1_790_000_000  # readings' epoch seconds: 2026-09-21


@pytest.fixture
def broker(tmp_path):
    require_mosquitto()
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


def _publisher(broker: Mosquitto) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def publish_all(broker: Mosquitto, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    """Publish and wait for every PUBACK: the broker has taken them all."""
    client = _publisher(broker)
    try:
        infos = [client.publish(t, p, qos=qos) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=20)
            assert info.is_published(), "the broker did not acknowledge a publish"
    finally:
        client.disconnect()
        client.loop_stop()


def _counts(url: str) -> tuple[int, int, float]:
    with Store.open(url) as store, store.read() as conn:
        n, total = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(value), 0) FROM readings"
        ).one()
        dead = conn.exec_driver_sql("SELECT count(*) FROM dead_letters").scalar()
    return int(n), int(dead), float(total)


@contextmanager
def _writes_stalled(url: str):
    """Writes to the readings table wait (a stalled database) until the block is left."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # the write lock: other writers wait
    else:
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        conn.execute("LOCK TABLE readings IN SHARE ROW EXCLUSIVE MODE")  # blocks INSERT
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def _connector(
    broker: Mosquitto, url: str, client_id: str, *topics: str, extra=(), env=None, scheme="mqtt"
) -> Connector:
    address = f"{scheme}://127.0.0.1:{broker.port}"
    args = ["--database-url", url, "--broker", address, "--client-id", client_id]
    args += [a for t in topics for a in ("--topic", t)]
    args += ["--report-every", "0s", *extra]
    return Connector(args, env=env)


def _json_messages(start: int, stop: int, topics: int = 25) -> list[tuple[str, bytes]]:
    return [
        (f"line/s{i % topics}", json.dumps({"ts": BASE_S + i, "value": i}).encode())
        for i in range(start, stop)
    ]


@pytest.mark.slow
def test_nothing_lost_or_doubled_across_broker_restarts_and_a_sigkill(broker, db_url):
    n = 6000
    store = Store.open(db_url)
    store.init()
    store.close()
    opts = [
        "--template",
        "line/{sensor}",
        "--batch-size",
        "300",
        "--flush",
        "50ms",
        "--max-inflight",
        "1000",
    ]
    client_id = f"nl-{uuid.uuid4().hex[:8]}"
    first = _connector(broker, db_url, client_id, "line/#", extra=opts)
    try:
        first.wait_subscribed()
        publish_all(broker, _json_messages(0, n // 3))
        broker.restart()  # the connector is connected: it must reconnect and resume its session
        publish_all(broker, _json_messages(n // 3, n // 2))
        wait_for(lambda: _counts(db_url)[0] > n // 3, 30, "readings after the broker restart")
        with _writes_stalled(db_url):  # the rest reaches the connector, which cannot store it
            publish_all(broker, _json_messages(n // 2, 2 * n // 3))
            time.sleep(1.0)
            assert first.alive(), first.output()
            first.kill()  # SIGKILL: whatever it held was not stored, so not acknowledged
    finally:
        if first.alive():
            first.kill()
    stored_at_kill = _counts(db_url)[0]
    print(
        f"SIGKILLed the connector with {stored_at_kill} of {2 * n // 3} published readings stored"
    )
    # The broker had taken them all (PUBACK): the kill hit readings the connector had not
    # stored, hence not acknowledged (their redelivery is what the rest of the test checks).
    assert stored_at_kill <= n // 2 < 2 * n // 3, "the kill came after the stall was over"
    publish_all(broker, _json_messages(2 * n // 3, n))  # queued in the offline session
    broker.restart()  # the queued messages must survive the broker's restart too
    second = _connector(broker, db_url, client_id, "line/#", extra=opts)
    try:
        wait_for(lambda: _counts(db_url)[0] >= n, 40, f"{n} readings ({_counts(db_url)})")
        # Whatever else the broker still had to redeliver lands on the same keys.
        wait_for(lambda: second.saw("subscribed to"), 10, "the second connector's subscription")
    finally:
        code = second.terminate()
    count, dead, total = _counts(db_url)
    assert count == n, f"{count} readings stored, expected {n}"
    assert total == sum(range(n)), "the stored values are not the published ones"
    assert dead == 0
    assert code == 0, second.output()
    with Store.open(db_url) as s:
        assert {x.name for x in s.list_sensors()} == {f"s{i}" for i in range(25)}
        assert {str(x.source) for x in s.list_sensors()} == {"mqtt"}


@pytest.mark.postgres
def test_database_connections_lost_mid_stream_are_retried(broker, pg_url):
    import threading

    import psycopg

    n = 3000
    app = f"mqtt-{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={app}"
    with Store.open(url) as store:
        store.init()
    connector = _connector(
        broker, url, f"db-{uuid.uuid4().hex[:8]}", "line/#", extra=["--batch-size", "200"]
    )
    killed: list[int] = []
    stop = threading.Event()

    def kill_backends() -> None:  # the connector's sessions, again and again, mid-transaction
        with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
            while not stop.wait(0.03):
                killed.append(
                    conn.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = %s",
                        (app,),
                    ).fetchone()[0]
                )

    killer = threading.Thread(target=kill_backends)
    try:
        connector.wait_subscribed()
        killer.start()
        publish_all(broker, _json_messages(0, n))
        # Keep publishing until a kill has hit a transaction (an idle pooled session is
        # replaced silently) and the connector has said it retries.
        while not connector.saw("retrying") and n < 30_000:
            publish_all(broker, _json_messages(n, n + 1000))
            n += 1000
        wait_for(lambda: connector.saw("retrying"), 20, "a write lost mid-transaction")
        stop.set()
        killer.join()
        wait_for(lambda: _counts(url)[0] >= n, 40, f"{n} readings after the outage")
        assert connector.alive()
    finally:
        stop.set()
        code = connector.terminate()
    assert _counts(url)[:2] == (n, 0)
    assert code == 0, connector.output()


def _sparkplug_corpus() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes, str]]]:
    """Messages that are fine but store nothing, then the malformed ones with the expected
    reason (a fragment)."""
    births = [
        (  # a node birth whose metrics carry no value: aliases known, nothing stored
            "spBv1.0/plant/NBIRTH/edge1",
            sparkplug.encode(
                [
                    {"name": "bdSeq", "datatype": 8, "value": 0},
                    {"name": "pressure", "alias": 1, "datatype": 10, "is_null": True},
                ],
                seq=0,
                timestamp_ms=BASE_S * 1000,
            ),
        )
    ]
    bad = [
        (
            "spBv1.0/plant/NDATA/edge1",
            sparkplug.encode([{"alias": 99, "datatype": 10, "value": 1.0}], seq=1),
            "unknown alias",
        ),
        (
            "spBv1.0/plant/NDATA/edge1",
            sparkplug.encode([{"alias": 1, "datatype": 10, "value": 2.0}], seq=7),
            "seq gap",
        ),
        (
            "spBv1.0/plant/NDATA/edge9",
            sparkplug.encode([{"alias": 1, "datatype": 10, "value": 3.0}], seq=4),
            "no NBIRTH",
        ),
        ("spBv1.0/plant/NDATA/edge2", b"\x0a\xff\xff", "protobuf"),
    ]
    return births, bad


@pytest.mark.slow
def test_malformed_payloads_go_to_dead_letters_and_the_connector_goes_on(broker, sqlite_url):
    corpus = [
        ("bad/json", b'{"value": 1', "not JSON"),
        ("bad/type", b'{"value": "high"}', "not a number"),
        ("bad/list", b'{"value": [1, 2]}', "not a number"),
        ("bad/array", b"[1, 2]", "expected a JSON object"),
        ("bad/nan", b'{"value": NaN}', "not a finite number"),
        ("bad/inf", b'{"value": 1e999}', "not a finite number"),
        ("bad/ts", b'{"ts": "yesterday", "value": 1}', "ISO 8601"),
        ("bad/field", b'{"v": 1}', "no 'value' field"),
        ("bad/plain", b"nan", "not a finite number"),
        ("bad/text", b"high", "not a number"),
        ("bad/huge", b'{"value": 1, "pad": "' + b"x" * 200_000 + b'"}', "exceeds --max-payload"),
    ]
    births, bad_spb = _sparkplug_corpus()
    corpus += bad_spb
    connector = _connector(
        broker,
        sqlite_url,
        f"dl-{uuid.uuid4().hex[:8]}",
        "bad/#",
        "spBv1.0/#",
        extra=["--mqtt-version", "3.1.1"],  # the other test runs MQTT 5
    )
    rebirths: list[str] = []
    watcher = _publisher(broker)
    watcher.on_message = lambda c, u, m: (
        rebirths.append(m.topic)
        if any(
            x.name == sparkplug.REBIRTH_METRIC and x.boolean_value
            for x in sparkplug.decode(m.payload).metrics
        )
        else None
    )
    watcher.subscribe("spBv1.0/plant/NCMD/#", qos=1)
    try:
        connector.wait_subscribed()
        publish_all(broker, births)
        publish_all(broker, [(t, p) for t, p, _ in corpus])
        wait_for(lambda: _counts(sqlite_url)[1] >= len(corpus), 20, "the dead letters")
        publish_all(broker, [("bad/ok", b'{"value": 42.5}')])  # still alive and storing
        wait_for(lambda: _counts(sqlite_url)[0] >= 1, 20, "the valid message after the corpus")
        wait_for(lambda: rebirths, 10, "a rebirth request (NCMD Node Control/Rebirth)")
        assert connector.alive()
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        code = connector.terminate()
    assert code == 0, connector.output()
    count, dead, total = _counts(sqlite_url)
    assert (count, dead, total) == (1, len(corpus), 42.5)
    with Store.open(sqlite_url) as store:
        letters = store.list_dead_letters(limit=100)
        assert {s.name for s in store.list_sensors()} == {"bad/ok"}
    by_topic: dict[str, list] = {}
    for d in letters:
        by_topic.setdefault(d.topic, []).append(d)
    for topic, payload, reason in corpus:
        found = [d for d in by_topic.get(topic, []) if reason in d.reason]
        assert found, f"no dead letter for {topic} with {reason!r}: {by_topic.get(topic)}"
        assert found[0].payload == payload[:4096]
        assert found[0].payload_size == len(payload)
    assert "spBv1.0/plant/NCMD/edge1" in rebirths


# -- the parts, without a broker ----------------------------------------------------------


def test_json_payloads_and_times():
    f = JsonFields()
    assert parse_json(b'{"ts": 1790000000, "value": 2}', f, 7) == (1_790_000_000_000_000, 2.0)
    assert parse_json(b'{"ts": 1790000000123, "value": 2}', f, 7)[0] == 1_790_000_000_123_000
    assert parse_json(b'{"value": true}', f, 7) == (7, 1.0)
    assert parse_json(b'{"t": "2026-01-01T00:00:00Z", "v": 1}', JsonFields("v", "t"), 0) == (
        1_767_225_600_000_000,
        1.0,
    )
    assert parse_ts("2026-01-01T01:00:00+01:00") == 1_767_225_600_000_000
    for bad in (b'{"value": null}', b'{"ts": 1e30, "value": 1}', b'"x"'):
        with pytest.raises(PayloadError):
            parse_json(bad, f, 0)


def test_topic_templates_and_mapping_files(tmp_path):
    m = TopicMap(template="plant/{area}/{sensor}")
    assert m.name("plant/north/temp") == "temp"
    assert m.name("plant/north/temp/extra") is None
    assert TopicMap(template="p/{area}/{tag}").name("p/a/b") == "a.b"
    assert TopicMap(template="p/{area}/{tag}", name_format="{area}_{tag}").name("p/a/b") == "a_b"
    (tmp_path / "m.csv").write_text("topic,sensor\nplant/a,pump_1\n")
    assert TopicMap.from_file(tmp_path / "m.csv").name("plant/a") == "pump_1"
    (tmp_path / "m.json").write_text('{"g/n/temp": "t1"}')
    assert TopicMap.from_file(tmp_path / "m.json").name("g/n/temp") == "t1"
    assert TopicMap.from_file(tmp_path / "m.json").name("g/n/other") is None


def test_sparkplug_births_aliases_historical_and_signed_ints():
    host = sparkplug.SparkplugHost()
    birth = sparkplug.encode(
        [
            {"name": "temp", "alias": 1, "datatype": 9, "value": 20.5},
            {"name": "count", "alias": 2, "datatype": 2, "value": -3},
            {"name": "label", "alias": 3, "datatype": 12, "value": "x"},
        ],
        seq=0,
        timestamp_ms=1000,
    )
    got = host.handle("spBv1.0/g/NBIRTH/n", birth, received_us=5, dup=False)
    assert got.readings == [("g/n/temp", 1_000_000, 20.5), ("g/n/count", 1_000_000, -3.0)]
    data = sparkplug.encode(
        [
            {"alias": 2, "value": -7, "datatype": 2},
            {"alias": 1, "value": 1.5, "datatype": 9, "timestamp": 500, "is_historical": True},
            {"alias": 1, "value": 9.0, "datatype": 9, "is_transient": True},
        ],
        seq=1,
        timestamp_ms=2000,
    )
    got = host.handle("spBv1.0/g/NDATA/n", data, received_us=5, dup=False)
    assert got.readings == [("g/n/count", 2_000_000, -7.0), ("g/n/temp", 500_000, 1.5)]
    assert got.historical == 1 and not got.problems
    # seq wraps at 255; a redelivered (dup) message is not a gap
    again = host.handle("spBv1.0/g/NDATA/n", data, received_us=5, dup=True)
    assert not again.problems


def test_device_births_and_data_by_alias():
    host = sparkplug.SparkplugHost()
    host.handle("spBv1.0/g/NBIRTH/n", sparkplug.encode([], seq=0), received_us=1, dup=False)
    dbirth = sparkplug.encode([{"name": "flow", "alias": 7, "datatype": 10, "value": 1.0}], seq=1)
    got = host.handle("spBv1.0/g/DBIRTH/n/pump", dbirth, received_us=2, dup=False)
    assert got.readings == [("g/n/pump/flow", 2, 1.0)]
    ddata = sparkplug.encode([{"alias": 7, "value": 2.5}], seq=2, timestamp_ms=3)
    got = host.handle("spBv1.0/g/DDATA/n/pump", ddata, received_us=9, dup=False)
    assert got.readings == [("g/n/pump/flow", 3000, 2.5)] and not got.problems
    # the node's own alias 7 is another metric's: device and node tables are apart
    ndata = sparkplug.encode([{"alias": 7, "value": 2.5}], seq=3)
    got = host.handle("spBv1.0/g/NDATA/n", ndata, received_us=9, dup=False)
    assert got.readings == [] and "unknown alias" in got.problems[0]


def test_bad_command_lines_are_one_line_errors():
    from click.testing import CliRunner

    from plantcast.cli.main import cli

    runner = CliRunner()
    for args, expected in [
        (["--broker", "http://host:1883"], "use mqtt://HOST:PORT"),
        (["--broker", "mqtt://user:secret@host"], "PLANTCAST_MQTT_USERNAME"),
        (["--template", "plant/area"], "has no placeholder"),
        (["--template", "p/{a}", "--name-format", "{b}"], "does not have"),
        (["--mapping", "/nonexistent/map.csv"], "cannot read the mapping file"),
    ]:
        result = runner.invoke(cli, ["connect", "mqtt", "--topic", "t/#", *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and expected in result.output, result.output
        assert "Traceback" not in result.output


@pytest.mark.slow
def test_tls_and_credentials_from_the_environment(tmp_path, sqlite_url):
    require_mosquitto()
    files = make_tls_files(tmp_path, "plant", "s3cret")
    broker = Mosquitto(
        tmp_path,
        extra=(
            f"cafile {files['ca']}",
            f"certfile {files['cert']}",
            f"keyfile {files['key']}",
            "allow_anonymous false",
            f"password_file {files['passwd']}",
        ),
    )
    broker.start()
    env = {"PLANTCAST_MQTT_USERNAME": "plant", "PLANTCAST_MQTT_CA_FILE": str(files["ca"])}
    wrong = _connector(
        broker,
        sqlite_url,
        "tls-wrong",
        "tls/#",
        scheme="mqtts",
        env={**env, "PLANTCAST_MQTT_PASSWORD": "nope"},
    )
    good = _connector(
        broker,
        sqlite_url,
        "tls-good",
        "tls/#",
        scheme="mqtts",
        env={**env, "PLANTCAST_MQTT_PASSWORD": "s3cret"},
    )
    try:
        wait_for(lambda: wrong.saw("refused the connection"), 30, "the refusal of a bad password")
        assert wrong.alive()  # it keeps trying, with backoff, and says why once
        good.wait_subscribed()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
        client.tls_set(ca_certs=str(files["ca"]))
        client.username_pw_set("plant", "s3cret")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.publish("tls/flow", b"12.5", qos=1).wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: _counts(sqlite_url)[0] == 1, 20, "the reading sent over TLS")
    finally:
        assert wrong.terminate() == 0 and good.terminate() == 0
        broker.stop()
    assert "s3cret" not in wrong.output() + good.output()


def test_a_database_down_at_start_is_waited_for(broker):
    connector = _connector(broker, "postgresql://postgres@127.0.0.1:9/none", "down", "t/#")
    try:
        wait_for(lambda: connector.saw("retrying in"), 30, "the connector to wait for the store")
        assert connector.alive()
    finally:
        code = connector.terminate()
    assert code == 0, connector.output()
    assert "Traceback" not in connector.output()


@pytest.mark.slow
def test_mapping_file_and_refused_unknown_sensors(broker, sqlite_url, tmp_path):
    import pandas as pd

    from plantcast.core.types import Source

    with Store.open(sqlite_url) as store:
        store.init()
        store.ensure_sensor("pump_1", source=Source.IMPORTED, interval=pd.Timedelta("1min"))
    mapping = tmp_path / "map.csv"
    mapping.write_text("topic,sensor\nsite/p1,pump_1\nsite/p2,pump_2\n")
    extra = ["--mapping", str(mapping), "--unknown-sensors", "refuse"]
    connector = _connector(broker, sqlite_url, "map", "site/#", extra=extra)
    try:
        connector.wait_subscribed()
        publish_all(broker, [("site/p1", b"1.5"), ("site/p2", b"2.5"), ("site/p3", b"3.5")])
        wait_for(lambda: _counts(sqlite_url)[:2] == (1, 2), 20, "one reading, two dead letters")
    finally:
        assert connector.terminate() == 0, connector.output()
    with Store.open(sqlite_url) as store:
        reasons = {d.topic: d.reason for d in store.list_dead_letters()}
        assert {s.name for s in store.list_sensors()} == {"pump_1"}
    assert "unknown sensor 'pump_2'" in reasons["site/p2"]
    assert "has no sensor" in reasons["site/p3"]


def test_mapping_files_carry_units(tmp_path):
    from plantcast.core.errors import InputError

    (tmp_path / "m.json").write_text(
        json.dumps({"a/p": {"sensor": "p1", "unit": "bar"}, "a/t": "t1", "a/f": {"sensor": "f1"}})
    )
    m = TopicMap.from_file(tmp_path / "m.json")
    assert [m.name(k) for k in ("a/p", "a/t", "a/f")] == ["p1", "t1", "f1"]
    assert (m.unit("p1"), m.unit("t1"), m.unit("f1")) == ("bar", None, None)
    (tmp_path / "m.csv").write_text("topic,sensor,unit\na/p,p1,bar\na/p2,p1,bar\na/t,t1\n")
    c = TopicMap.from_file(tmp_path / "m.csv")
    assert (c.name("a/p2"), c.unit("p1"), c.unit("t1")) == ("p1", "bar", None)
    (tmp_path / "clash.csv").write_text("a/p,p1,bar\na/q,p1,kPa\n")
    with pytest.raises(InputError, match="'p1' is given two units: 'bar' and 'kPa'") as info:
        TopicMap.from_file(tmp_path / "clash.csv")
    assert info.value.line == 2
    (tmp_path / "bad.json").write_text('{"a/p": {"sensor": "p1", "units": "bar"}}')
    with pytest.raises(InputError, match="not for 'a/p'"):
        TopicMap.from_file(tmp_path / "bad.json")


@pytest.mark.slow
def test_sensors_created_from_a_mapping_get_its_units(broker, sqlite_url, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"site/p1": {"sensor": "pump_1", "unit": "bar"}, "site/t1": "temp_1"})
    )
    extra = ["--mapping", str(mapping), "--unit", "°C"]
    with Store.open(sqlite_url) as store:
        store.init()
    connector = _connector(broker, sqlite_url, "units", "site/#", extra=extra)
    try:
        connector.wait_subscribed()
        publish_all(broker, [("site/p1", b"1.5"), ("site/t1", b"20.5"), ("site/x", b"1")])
        wait_for(lambda: _counts(sqlite_url)[:2] == (2, 1), 20, "two readings, one dead letter")
    finally:
        assert connector.terminate() == 0, connector.output()
    with Store.open(sqlite_url) as store:
        units = {s.name: s.unit for s in store.list_sensors()}
        kinds = {d.topic: d.kind for d in store.list_dead_letters()}
    assert units == {"pump_1": "bar", "temp_1": "°C"}  # the mapping's unit, else --unit
    assert kinds == {"site/x": "unmapped_topic"}
