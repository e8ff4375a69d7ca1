"""connect opcua against real asyncua servers: source timestamps kept, Bad → dead letters,
Uncertain stored and counted, a killed and restarted server survived."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import require_module
from plantcast.cli.main import cli
from plantcast.core.config import load_settings
from plantcast.core.errors import InputError, StoreUnavailable
from plantcast.ingest.connectors.opcua import APPLICATION_URI, OpcuaConnector, Security
from plantcast.ingest.connectors.opcua_nodes import parse_spec, read_specs
from plantcast.signals.presets import model_for
from plantcast.store import Store

asyncua = require_module("asyncua", "the OPC UA connector tests need a real asyncua server")
ua = asyncua.ua


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class TagServer:
    """An asyncua server on a free port, in a thread, whose tags a test sets (value, status,
    source timestamp) as a PLC would."""

    def __init__(
        self, names=("temp", "level", "label"), users: dict | None = None, certs=None
    ) -> None:
        self.users = users  # {username: password}: only these may open a session
        self.certs = certs  # (certificate, key): Basic256Sha256 SignAndEncrypt only
        self.port = _free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}"
        self.names = names
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.nodes: dict[str, ua.NodeId] = {}
        self._stop = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))
        self.thread.start()
        assert self.ready.wait(30), "the test OPC UA server did not start"

    async def _run(self) -> None:
        server = asyncua.Server(user_manager=_Users(self.users) if self.users else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        if self.users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        if self.certs:
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await server.load_certificate(str(self.certs[0]))
            await server.load_private_key(str(self.certs[1]))
        ns = await server.register_namespace("urn:plantcast:test")
        folder = await server.nodes.objects.add_folder(ua.NodeId("Line1", ns), f"{ns}:Line1")
        for name in self.names:
            initial = "idle" if name == "label" else 0.0
            var = await folder.add_variable(ua.NodeId(f"Line1.{name}", ns), f"{ns}:{name}", initial)
            self.nodes[name] = var.nodeid
        self.server, self._stop = server, asyncio.Event()
        async with server:
            self.ready.set()
            await self._stop.wait()

    def set(self, name, value, ts: pd.Timestamp, status=ua.StatusCodes.Good) -> None:
        variant = ua.Variant(value, ua.VariantType.Double if isinstance(value, float) else None)
        dv = ua.DataValue(variant, ua.StatusCode(status), SourceTimestamp=ts.to_pydatetime())
        coro = self.server.write_attribute_value(self.nodes[name], dv)
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


class _Users:
    def __init__(self, users: dict) -> None:
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole

        if username in self.users and self.users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


@pytest.fixture(scope="module")
def tag_server():
    server = TagServer()
    yield server
    server.close()


class Running:
    """A connector running in a thread; stopped (and flushed) on exit."""

    def __init__(self, connector: OpcuaConnector) -> None:
        self.connector = connector
        self.thread = threading.Thread(target=self._run)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.connector.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> OpcuaConnector:
        self.thread.start()
        return self.connector

    def __exit__(self, exc_type, exc, tb) -> None:
        self.connector.stop()
        self.thread.join(20)
        assert not self.thread.is_alive(), "the connector did not stop"
        if self.error is not None:  # the test fails with the connector's own exception
            if exc is not None:
                exc.add_note(f"the connector thread raised too: {self.error!r}")
                return
            raise AssertionError(f"the connector thread raised {self.error!r}") from self.error


def _stored(store, name: str) -> pd.Series:
    sensor = {s.name: s for s in store.list_sensors()}.get(name)
    if sensor is None:
        return pd.Series(dtype=float)
    return store.read_series(
        sensor.id, pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC")
    )


def test_values_keep_source_timestamps_bad_to_dead_letters_uncertain_counted(store, tag_server):
    specs = [
        parse_spec("ns=2;s=Line1.temp"),  # by node id: sensor named after the browse name
        parse_spec("line1_level=Objects/2:Line1/2:level"),  # by browse path, named
        parse_spec("Objects/Line1/label"),  # a string tag: not a number
    ]
    connector = OpcuaConnector(
        store, tag_server.endpoint, specs, sampling_interval=pd.Timedelta("50ms"), watchdog=0.5
    )
    t0 = pd.Timestamp("2026-11-01T06:00:00.250", tz="UTC")
    t1 = t0 + pd.Timedelta("1min")  # the initial values are stamped now: leave them out
    with Running(connector):
        _wait_for(connector.connected.is_set, 20, "the subscription")
        # Each item first reports its current value: wait for those, so the writes below are
        # changes of their own.
        _wait_for(lambda: connector.stats.received >= 3, 15, "the initial values")
        sent = [
            ("temp", 21.5, t0, ua.StatusCodes.Good),
            ("temp", 22.5, t0 + pd.Timedelta("1s"), ua.StatusCodes.UncertainLastUsableValue),
            ("temp", 99.0, t0 + pd.Timedelta("2s"), ua.StatusCodes.BadSensorFailure),
            ("temp", 23.5, t0 + pd.Timedelta("3s"), ua.StatusCodes.Good),
            ("level", 1.25, t0, ua.StatusCodes.Good),
            ("level", 1.5, t0 + pd.Timedelta("1s"), ua.StatusCodes.Good),
            ("label", f"running {uuid.uuid4()}", t0, ua.StatusCodes.Good),  # a change each run
        ]
        for name, value, ts, status in sent:
            tag_server.set(name, value, ts, status)
            time.sleep(0.06)  # one sampling interval: each write is its own data change
        _wait_for(
            lambda: (
                len(_stored(store, "temp").loc[t0:t1]) == 3
                and len(_stored(store, "line1_level").loc[t0:t1]) == 2
                and sum(store.count_dead_letters(source="opcua").values()) >= 3
            ),
            20,
            "the values in the store",
        )
    temp = _stored(store, "temp").loc[t0:t1]
    assert list(temp.index) == [t0, t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("3s")]
    assert list(temp) == [21.5, 22.5, 23.5]  # the Uncertain value is stored
    level = _stored(store, "line1_level").loc[t0:t1]
    assert list(level.index) == [t0, t0 + pd.Timedelta("1s")] and list(level) == [1.25, 1.5]
    assert connector.stats.uncertain == 1
    letters = store.list_dead_letters(source="opcua")
    bad = [d for d in letters if d.reason == "bad status BadSensorFailure"]
    assert len(bad) == 1 and bad[0].topic == "ns=2;s=Line1.temp"
    # A Bad value travels without its value (the encoding leaves it out): status and time stay.
    assert b'"source_ts": "2026-11-01T06:00:02.250000+00:00"' in bad[0].payload
    labels = [d for d in letters if d.topic == "ns=2;s=Line1.label"]
    assert labels and all(d.reason == "not a number: str" for d in labels)
    assert {s.name: s.source.value for s in store.list_sensors()}["temp"] == "opcua"


def test_a_wrong_node_is_named_in_one_line(sqlite_url, tag_server):
    runner = CliRunner()
    base = ["connect", "opcua", "--database-url", sqlite_url, "--endpoint", tag_server.endpoint]
    result = runner.invoke(cli, [*base, "--node", "ns=2;s=Line1.nope"])
    assert result.exit_code == 1
    assert "Error: field 'node': node 'ns=2;s=Line1.nope' not found" in result.output
    result = runner.invoke(cli, [*base, "--node", "Objects/2:Line1/2:nope"])
    assert result.exit_code == 1 and "no '2:nope' there" in result.output
    assert "Traceback" not in result.output


def test_endpoint_errors_are_one_line(sqlite_url):
    runner = CliRunner()
    base = ["connect", "opcua", "--database-url", sqlite_url]
    result = runner.invoke(cli, [*base, "--endpoint", "http://plc:4840", "--node", "i=85"])
    assert result.exit_code == 1 and "is not opc.tcp://HOST:PORT" in result.output
    closed = f"opc.tcp://127.0.0.1:{_free_port()}"
    result = runner.invoke(
        cli, [*base, "--endpoint", closed, "--node", "i=85", "--start-timeout", "0.3s"]
    )
    assert result.exit_code == 1
    assert f"Error: cannot connect to OPC UA server {closed}" in result.output
    assert "Traceback" not in result.output


def test_node_specs():
    assert parse_spec("ns=2;s=Line1.temp") == parse_spec("ns=2;s=Line1.temp")
    assert parse_spec("ns=2;s=Line1.temp").sensor is None
    assert parse_spec("ns=2;s=Line1.temp").is_node_id
    assert parse_spec("i=2258").is_node_id
    named = parse_spec("boiler=ns=3;i=1001")
    assert (named.sensor, named.node, named.is_node_id) == ("boiler", "ns=3;i=1001", True)
    path = parse_spec("Root/Objects/2:Plant/flow")
    assert not path.is_node_id and path.path == ["Objects", "2:Plant", "flow"]
    with pytest.raises(InputError, match="no nodes given"):
        read_specs([], None)


def test_nodes_file(tmp_path):
    f = tmp_path / "nodes.txt"
    f.write_text("# the line's tags\nns=2;s=a\n\nlevel=Objects/2:Line1/2:level  # tank\n")
    specs = read_specs(["i=85"], f)
    assert [(s.sensor, s.node) for s in specs] == [
        (None, "i=85"),
        (None, "ns=2;s=a"),
        ("level", "Objects/2:Line1/2:level"),
    ]
    with pytest.raises(InputError, match="cannot read nodes file"):
        read_specs([], tmp_path / "missing.txt")


def _start_plc(port: int, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "plantcast", "simulate-plc", "opcua"]
    args = ["--endpoint", f"opc.tcp://127.0.0.1:{port}", "--interval", "0.2s"]
    return subprocess.Popen([*command, *args], env=env, stderr=subprocess.PIPE, text=True)


def test_simulated_plc_served_and_a_server_restart_survived(sqlite_url):
    """The PLC's readings arrive with its timestamps (equal to the model's values), and after
    the server is killed and started again on the same port, new values arrive.

    On SQLite only: the write path is the one tested on both engines above, and two starts of
    a server process are the slow part of this test."""
    store = Store.open(sqlite_url)
    store.init()
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("PLANTCAST_DATABASE_URL", "DATABASE_URL")
    }
    plc = _start_plc(port, env)
    specs = [parse_spec("ns=2;s=reservoir_pressure"), parse_spec("Objects/2:Plant/2:export_flow")]
    connector = OpcuaConnector(
        store,
        f"opc.tcp://127.0.0.1:{port}",
        specs,
        sampling_interval=pd.Timedelta("100ms"),
        watchdog=0.3,
        timeout=1.0,
        backoff=(0.2, 0.5),
    )
    try:
        with Running(connector):
            _wait_for(lambda: len(_stored(store, "reservoir_pressure")) >= 3, 30, "PLC readings")
            plc.send_signal(signal.SIGKILL)
            plc.wait(10)
            killed_at = pd.Timestamp(dt.datetime.now(dt.UTC))
            plc = _start_plc(port, env)
            _wait_for(
                lambda: (s := _stored(store, "export_flow")).size and s.index[-1] > killed_at,
                30,
                "readings after the restart",
            )
            assert connector.stats.reconnects >= 1
    finally:
        plc.send_signal(signal.SIGTERM)
        plc.wait(10)
    for name in ("reservoir_pressure", "export_flow"):
        stored = _stored(store, name)
        expected = model_for(name).values(stored.index)
        assert list(stored) == pytest.approx(list(expected), abs=1e-9), name
    assert connector.stats.bad == 0
    store.close()


def test_a_stop_before_run_returns_at_once():
    connector = OpcuaConnector(None, f"opc.tcp://127.0.0.1:{_free_port()}", [parse_spec("i=85")])
    connector.stop()
    started = time.monotonic()
    assert connector.run().connects == 0
    assert time.monotonic() - started < 2


def test_values_wait_through_a_database_outage(sqlite_url, tag_server):
    store = Store.open(sqlite_url)
    store.init()
    calls = {"n": 0}
    real = store.write_batch

    def flaky(batch, dead_letters=()):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StoreUnavailable("lost the database (test)")
        return real(batch, dead_letters)

    store.write_batch = flaky
    connector = OpcuaConnector(
        store,
        tag_server.endpoint,
        [parse_spec("ns=2;s=Line1.level")],
        sampling_interval=pd.Timedelta("50ms"),
        backoff=(0.05, 0.2),
    )
    t0 = pd.Timestamp("2026-11-04T00:00:00", tz="UTC")
    with Running(connector):
        _wait_for(connector.connected.is_set, 20, "the subscription")
        for i in range(3):
            tag_server.set("level", 100.0 + i + connector.stats.received, t0 + pd.Timedelta(i, "s"))
        _wait_for(
            lambda: len(_stored(store, "level").loc[t0 : t0 + pd.Timedelta("1min")]) == 3,
            20,
            "the values after the outage",
        )
    assert connector.stats.store_failures == 2
    store.close()


def test_the_command_stops_on_sigterm_and_flushes(sqlite_url, tag_server):
    t0 = pd.Timestamp("2026-11-05T00:00:00", tz="UTC")
    command = [sys.executable, "-m", "plantcast", "connect", "opcua", "--database-url", sqlite_url]
    args = ["--endpoint", tag_server.endpoint, "--node", "line_temp=ns=2;s=Line1.temp"]
    proc = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    store = Store.open(sqlite_url)
    try:
        _wait_for(
            lambda: proc.poll() is not None or "line_temp" in {s.name for s in _sensors(store)},
            60,
            "the command to subscribe",
        )
        assert proc.poll() is None, proc.communicate()
        tag_server.set("temp", 31.25, t0)
        _wait_for(lambda: t0 in _stored(store, "line_temp").index, 20, "the value")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stored" in out and "Traceback" not in err
    store.close()


def _sensors(store):
    try:
        return store.list_sensors()
    except Exception:  # the command has not created the tables yet
        return []


def _self_signed(tmp_path, name: str, app_uri: str, use) -> tuple:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate

    cert, key = tmp_path / f"{name}_cert.der", tmp_path / f"{name}_key.pem"
    asyncio.run(
        setup_self_signed_certificate(key, cert, app_uri, "127.0.0.1", [use], {"commonName": name})
    )
    return cert, key


def test_security_policy_and_user_from_the_environment(sqlite_url, tmp_path, monkeypatch):
    """A server offering only Basic256Sha256 SignAndEncrypt to one user: without the policy,
    or with a wrong password, the command stops at once saying so; with both, values arrive."""
    from cryptography.x509.oid import ExtendedKeyUsageOID as Use

    server_certs = _self_signed(tmp_path, "server", "urn:plantcast:test", Use.SERVER_AUTH)
    # The connector presents this application URI: its certificate must carry it.
    cert, key = _self_signed(tmp_path, "client", APPLICATION_URI, Use.CLIENT_AUTH)
    server = TagServer(names=("temp",), users={"operator": "s3cret"}, certs=server_certs)
    policy = f"Basic256Sha256,SignAndEncrypt,{cert},{key}"
    try:
        base = ["connect", "opcua", "--database-url", sqlite_url, "--endpoint", server.endpoint]
        base += ["--node", "ns=2;s=Line1.temp"]
        monkeypatch.setenv("PLANTCAST_OPCUA_USERNAME", "operator")
        monkeypatch.setenv("PLANTCAST_OPCUA_PASSWORD", "wrong")
        monkeypatch.delenv("PLANTCAST_OPCUA_SECURITY", raising=False)
        result = CliRunner().invoke(cli, base)
        assert result.exit_code == 1, result.output
        assert "refused the session" in result.output and "No matching endpoints" in result.output

        monkeypatch.setenv("PLANTCAST_OPCUA_SECURITY", policy)
        result = CliRunner().invoke(cli, base)
        assert result.exit_code == 1, result.output
        assert f"OPC UA server {server.endpoint} refused the session" in result.output
        assert "wrong" not in result.output  # the password is never shown

        monkeypatch.setenv("PLANTCAST_OPCUA_PASSWORD", "s3cret")
        store = Store.open(sqlite_url)
        store.init()
        connector = OpcuaConnector(
            store,
            server.endpoint,
            [parse_spec("ns=2;s=Line1.temp")],
            sampling_interval=pd.Timedelta("50ms"),
            security=Security.from_settings(load_settings(database_url=sqlite_url)),
        )
        t0 = pd.Timestamp("2026-11-06T00:00:00", tz="UTC")
        with Running(connector):
            _wait_for(connector.connected.is_set, 20, "the secured subscription")
            server.set("temp", 8.5, t0)
            _wait_for(lambda: t0 in _stored(store, "temp").index, 10, "the value")
        store.close()
    finally:
        server.close()
