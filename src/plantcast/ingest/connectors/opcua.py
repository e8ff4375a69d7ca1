"""OPC UA into the store: a subscription on a server's nodes, batched into the store's writer.

Each data change keeps the server's source timestamp (the server's own, then the time of
receipt, when the source left it out). A value whose status is Bad goes to ``dead_letters``
with the node id; an Uncertain one is stored and counted. Batches go through
:meth:`Store.write_batch` (an upsert on sensor and time), so the values a server sends again
after a reconnect — every monitored item reports its current value when it is created — are
stored once. A lost connection (the server restarts, the network drops) is noticed by a
watchdog that reads the server's state every few seconds; the connector then connects again
with backoff, resolves the nodes anew (a restarted server may number them differently) and
subscribes again. While the database is away, values wait in memory and are written with
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, PlantcastError, StoreUnavailable
from plantcast.core.types import Source
from plantcast.ingest.connectors.opcua_nodes import NodeSpec, resolve
from plantcast.store import Store
from plantcast.store.dead_letters import DeadLetter

log = logging.getLogger(__name__)

APPLICATION_URI = "urn:plantcast:connect-opcua"
MAX_PENDING = 1_000_000  # values held while the database is away before the oldest are dropped
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


@dataclass
class OpcuaStats:
    received: int = 0  # data changes received
    stored: int = 0  # readings committed (Good and Uncertain)
    uncertain: int = 0  # of those received, with an Uncertain status
    bad: int = 0  # sent to dead letters (Bad status, not a number)
    batches: int = 0
    connects: int = 0  # successful connections (1 + reconnects)
    dropped: int = 0  # lost to a full memory queue during a long database outage
    store_failures: int = 0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


@dataclass
class Security:
    """From the environment: ``PLANTCAST_OPCUA_SECURITY`` is asyncua's security string
    (``Basic256Sha256,SignAndEncrypt,client_cert.der,client_key.pem[,server_cert.der]``);
    ``PLANTCAST_OPCUA_USERNAME`` / ``PLANTCAST_OPCUA_PASSWORD`` the user."""

    policy: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_settings(cls, settings) -> Security:
        password = settings.opcua_password
        return cls(
            settings.opcua_security or None,
            settings.opcua_username or None,
            password.get_secret_value() if password is not None else None,
        )


@dataclass
class _Pending:
    sensor_ids: list[int] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sensor_ids) + len(self.letters)

    def take(self) -> _Pending:
        taken = _Pending(self.sensor_ids, self.ts_us, self.values, self.letters)
        self.sensor_ids, self.ts_us, self.values, self.letters = [], [], [], []
        return taken

    def put_back(self, older: _Pending) -> None:
        self.sensor_ids[:0] = older.sensor_ids
        self.ts_us[:0] = older.ts_us
        self.values[:0] = older.values
        self.letters[:0] = older.letters


def _epoch_us(when: dt.datetime) -> int:
    if when.tzinfo is None:  # asyncua gives naive UTC datetimes
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // _US


def _as_float(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


class OpcuaConnector:
    """Subscribes to nodes of one OPC UA server and writes their values to the store."""

    def __init__(
        self,
        store: Store,
        endpoint: str,
        specs: list[NodeSpec],
        *,
        sampling_interval: pd.Timedelta = pd.Timedelta("1s"),
        batch_size: int = 5_000,
        flush_interval: float = 0.2,
        security: Security | None = None,
        timeout: float = 4.0,
        watchdog: float = 2.0,
        backoff: tuple[float, float] = (0.5, 15.0),
        start_timeout: float = 30.0,
        on_commit: Callable[[np.ndarray, float], None] | None = None,
        say: Callable[[str], None] | None = None,
        report_every: float = 0.0,
    ) -> None:
        if not endpoint.startswith("opc.tcp://"):
            raise InputError(f"endpoint {endpoint!r} is not opc.tcp://HOST:PORT", field="endpoint")
        self.store, self.endpoint, self.specs = store, endpoint, specs
        self.sampling_ms = sampling_interval.total_seconds() * 1000.0
        self.sampling_interval = sampling_interval
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.security = security or Security()
        self.timeout, self.watchdog = timeout, watchdog
        self.backoff_min, self.backoff_max = backoff
        self.start_timeout = start_timeout  # the first connection gives up after this
        self.on_commit = on_commit  # (source ts µs of the committed readings, commit time)
        self.say = say or (lambda text: log.info("%s", text))
        self.report_every = report_every  # seconds between progress lines (0: none)
        self.stats = OpcuaStats()
        self.connected = threading.Event()  # set while subscribed
        self._pending = _Pending()
        self._sensor_of: dict = {}  # NodeId -> sensor id, for the current subscription
        self._sensor_ids: dict[str, int] = {}  # sensor name -> id (kept across reconnects)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._stop_requested = threading.Event()

    # -- control --------------------------------------------------------------------------
    def run(self) -> OpcuaStats:
        """Run until :meth:`stop`; flush what is pending; return the counts."""
        asyncio.run(self._main())
        return self.stats

    def stop(self) -> None:
        """Thread-safe and signal-safe: ask the connector to flush and return."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        writer = asyncio.create_task(self._writer())
        reporter = asyncio.create_task(self._reporter()) if self.report_every > 0 else None
        try:
            await self._connection_loop()
        finally:
            self._stop.set()
            self._wake.set()
            await writer
            if reporter is not None:
                await reporter

    async def _reporter(self) -> None:
        last, at = 0, time.monotonic()
        while not self._stop.is_set():
            await self._sleep(self.report_every)
            if self._stop.is_set():
                return  # the command prints the totals
            s, now = self.stats, time.monotonic()
            rate = (s.stored - last) / max(now - at, 1e-9)
            last, at = s.stored, now
            self.say(
                f"{s.stored:,} values stored ({rate:,.0f}/s), {s.uncertain:,} uncertain, "
                f"{s.bad:,} dead letters, {len(self._pending):,} queued, "
                f"{s.reconnects} reconnect(s)"
            )

    # -- connection -----------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        delay = self.backoff_min
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                await self._session()
                delay = self.backoff_min
            except PlantcastError as exc:
                if self.stats.connects == 0:
                    raise  # a wrong node or setting: say so rather than retry forever
                log.warning("after reconnecting to %s: %s; retrying", self.endpoint, exc)
            except Exception as exc:
                if self.stats.connects == 0 and _refused(exc):
                    raise PlantcastError(
                        f"OPC UA server {self.endpoint} refused the session: {_one_line(exc)} "
                        "(check PLANTCAST_OPCUA_USERNAME, _PASSWORD and _SECURITY)"
                    ) from None
                if self.stats.connects == 0 and time.monotonic() - started > self.start_timeout:
                    raise PlantcastError(
                        f"cannot connect to OPC UA server {self.endpoint}: {_one_line(exc)}"
                    ) from None
                log.warning("OPC UA session on %s: %s; retrying", self.endpoint, _one_line(exc))
            self.connected.clear()
            if self._stop.is_set():
                break
            await self._sleep(delay)
            delay = min(self.backoff_max, delay * 2)

    async def _session(self) -> None:
        from asyncua import Client

        client = Client(self.endpoint, timeout=self.timeout)
        await self._configure(client)
        await client.connect()
        try:
            nodes = await self._resolve(client)
            handler = _Handler(self)
            sub = await client.create_subscription(self.sampling_ms, handler)
            await sub.subscribe_data_change(nodes, sampling_interval=self.sampling_ms, queuesize=10)
            self.stats.connects += 1
            self.connected.set()
            again = " again" if self.stats.connects > 1 else ""
            self.say(f"subscribed{again} to {len(nodes):,} node(s) on {self.endpoint}")
            await self._watch(client)
        finally:
            self.connected.clear()
            with contextlib.suppress(Exception):  # the server is gone: nothing to close
                await asyncio.wait_for(client.disconnect(), timeout=self.timeout)

    async def _configure(self, client) -> None:
        client.name = client.description = "plantcast connect opcua"
        client.application_uri = APPLICATION_URI  # a client certificate must carry it
        sec = self.security
        if sec.policy:
            try:
                await client.set_security_string(sec.policy)
            except Exception as exc:
                raise InputError(
                    f"PLANTCAST_OPCUA_SECURITY is not usable: {_one_line(exc)}", field="security"
                ) from None
        if sec.username:
            client.set_user(sec.username)
        if sec.password:
            client.set_password(sec.password)

    async def _watch(self, client) -> None:
        """Return when the connection is lost (the server's state cannot be read) or on stop."""
        node = client.nodes.server_state
        while not self._stop.is_set():
            await self._sleep(self.watchdog)
            if self._stop.is_set():
                return
            await asyncio.wait_for(node.read_value(), timeout=self.timeout)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    # -- nodes ----------------------------------------------------------------------------
    async def _resolve(self, client) -> list:
        """The subscription's nodes, each mapped to its sensor (created when missing)."""
        nodes, names = await resolve(client, self.specs, self.endpoint)
        missing = [n for n in names if n not in self._sensor_ids]
        if missing:
            await asyncio.to_thread(self._ensure_sensors, missing)
        self._sensor_of = {
            node.nodeid: self._sensor_ids[name] for node, name in zip(nodes, names, strict=True)
        }
        return nodes

    def _ensure_sensors(self, names: list[str]) -> None:
        for name in names:
            sensor = self.store.ensure_sensor(
                name,
                source=Source.OPCUA,
                interval=self.sampling_interval,
                description=f"OPC UA {self.endpoint}",
            )
            self._sensor_ids[name] = sensor.id

    # -- values ---------------------------------------------------------------------------
    def on_change(self, nodeid, datavalue) -> None:
        """One data change (called on the event loop by the subscription)."""
        self.stats.received += 1
        sensor_id = self._sensor_of.get(nodeid)
        if sensor_id is None:
            return
        status = datavalue.StatusCode
        when = datavalue.SourceTimestamp or datavalue.ServerTimestamp
        ts_us = _epoch_us(when) if when is not None else _epoch_us(dt.datetime.now(dt.UTC))
        raw = datavalue.Value.Value if datavalue.Value is not None else None
        value = _as_float(raw)
        reason = kind = None
        if status is not None and status.is_bad():
            kind, reason = "bad_status", f"bad status {status.name}"
        elif value is None:
            kind, reason = "not_number", f"not a number: {type(raw).__name__}"
        elif not math.isfinite(value):
            kind, reason = "nan", "not a finite number"
        if reason is not None:
            self.stats.bad += 1
            self._pending.letters.append(_letter(nodeid, raw, status, ts_us, reason, kind))
        else:
            if status is not None and status.is_uncertain():
                self.stats.uncertain += 1
            p = self._pending
            p.sensor_ids.append(sensor_id)
            p.ts_us.append(ts_us)
            p.values.append(value)
        if len(self._pending) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def _writer(self) -> None:
        delay = self.backoff_min
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
                self._wake.clear()
            if len(self._pending):
                batch = self._pending.take()
                try:
                    await asyncio.to_thread(self._write, batch)
                    delay = self.backoff_min
                except StoreUnavailable as exc:
                    self.stats.store_failures += 1
                    self._pending.put_back(batch)
                    self._trim()
                    log.warning("database unavailable (%s); holding %d", exc, len(self._pending))
                    if stopping and delay >= self.backoff_max:
                        log.error("gave up with %d value(s) unwritten", len(self._pending))
                        return
                    await asyncio.sleep(delay)
                    delay = min(self.backoff_max, delay * 2)
                    continue
            if stopping and not len(self._pending):
                return

    def _write(self, p: _Pending) -> None:
        ts = np.asarray(p.ts_us, dtype=np.int64)
        batch = {
            "sensor_id": np.asarray(p.sensor_ids, dtype=np.int64),
            "ts": ts,
            "value": np.asarray(p.values, dtype=np.float64),
        }
        self.store.write_batch(batch, p.letters)
        self.stats.stored += len(ts)
        self.stats.batches += 1
        if self.on_commit is not None:
            self.on_commit(ts, time.time())

    def _trim(self) -> None:
        over = len(self._pending.sensor_ids) - MAX_PENDING
        if over > 0:
            p = self._pending
            del p.sensor_ids[:over], p.ts_us[:over], p.values[:over]
            self.stats.dropped += over
            log.error("memory queue full: dropped the %d oldest value(s)", over)


class _Handler:
    """asyncua's subscription callbacks."""

    def __init__(self, connector: OpcuaConnector) -> None:
        self.connector = connector

    def datachange_notification(self, node, val, data) -> None:
        self.connector.on_change(node.nodeid, data.monitored_item.Value)

    def status_change_notification(self, status) -> None:
        log.warning("subscription status: %s", status)


def _letter(nodeid, raw, status, ts_us: int, reason: str, kind: str) -> DeadLetter:
    payload = json.dumps(
        {
            "value": raw if isinstance(raw, int | float | str | bool | None) else repr(raw),
            "status": None if status is None else status.name,
            "source_ts": pd.Timestamp(ts_us, unit="us", tz="UTC").isoformat(),
        },
        default=str,
    ).encode()
    return DeadLetter(
        source="opcua", topic=nodeid.to_string(), payload=payload, reason=reason, kind=kind
    )


_REFUSALS = ("BadUser", "BadIdentity", "BadSecurity", "BadCertificate", "BadNoValidCertificates")


def _refused(exc: BaseException) -> bool:
    """The server turned down who we are (user, certificate, policy), or offers no endpoint
    with our security policy: retrying will not help."""
    return exc.__class__.__name__.startswith(_REFUSALS) or "No matching endpoints" in str(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__
