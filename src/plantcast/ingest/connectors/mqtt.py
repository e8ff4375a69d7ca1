"""MQTT → store: QoS 1 on a persistent session, manual acks after commit, nothing lost.

paho's network thread only hands over what arrives (topic, payload, packet id). The caller's
thread takes batches (N messages, T ms after the first, or when nothing arrived for 20 ms) and
turns them into readings and dead letters; a writer thread writes each batch in one
transaction (``Store.write_batch``, an idempotent upsert) and only then acknowledges its
messages to the broker, while the next batch is parsed. A crash before the commit leaves the
messages unacknowledged in the broker's session, which delivers them again; a crash after the
commit but before the acks delivers them again too, and the upsert stores them once. The
hand-over is bounded by the receive maximum announced to the broker (MQTT 5), so the broker
never has more unacknowledged messages out than fit; with MQTT 3.1.1 the broker's in-flight
limit applies and, above ours, a full inbox blocks paho's thread (TCP backpressure).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, PlantcastError, StoreUnavailable
from plantcast.core.types import Source
from plantcast.ingest.connectors.inbox import Inbox
from plantcast.ingest.connectors.mqtt_options import Broker, Options, Stats
from plantcast.ingest.connectors.payloads import PayloadError, parse_json, parse_number
from plantcast.ingest.connectors.sparkplug import (
    NAMESPACE,
    SparkplugError,
    SparkplugHost,
    rebirth_request,
)
from plantcast.store import Store
from plantcast.store.dead_letters import DeadLetter

log = logging.getLogger(__name__)

IDLE_FLUSH_S = 0.02  # a batch is also flushed when nothing has arrived for this long


@dataclass
class _Message:
    __slots__ = ("dup", "epoch", "mid", "payload", "qos", "received_us", "topic")
    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    received_us: int
    epoch: int


class MqttConnector:
    """One connection, one session, one writer. ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        options: Options,
        *,
        say: Callable[[str], None] = print,
    ) -> None:
        if not options.topics:
            raise InputError("give at least one --topic filter (wildcards + and # allowed)")
        if options.batch_size > options.max_inflight:
            raise InputError(
                f"--batch-size {options.batch_size} exceeds --max-inflight "
                f"{options.max_inflight}: a batch could never fill",
                field="batch-size",
            )
        self.store, self.broker, self.options, self.say = store, broker, options, say
        self.stats = Stats()
        self._inbox: Inbox[_Message] = Inbox(options.max_inflight)
        self._handoff: queue.Queue = queue.Queue(maxsize=1)
        self._writer_alive = True
        self._writer_error: BaseException | None = None
        self._sparkplug = SparkplugHost()
        self._sensor_ids: dict[str, int] = {}
        self._ack_lock = threading.Lock()
        self._epoch = 0  # bumped when the broker starts a new session: old packet ids are void
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._last_problem = ""
        self._client = self._make_client()

    # -- the broker side (paho's thread) ---------------------------------------------------
    def _make_client(self):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        v5 = self.options.mqtt_version == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect_properties(self):
        if self.options.mqtt_version != "5":
            return None
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.options.session_expiry_s
        props.ReceiveMaximum = self.options.max_inflight
        return props

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._refused = reason_code.is_failure
        if self._refused:
            self._problem(f"broker {self.broker} refused the connection: {reason_code}")
            return
        with self._ack_lock:
            if not flags.session_present:
                self._epoch += 1
        self._connected.set()
        self._last_problem = ""
        state = "resumed its session" if flags.session_present else "started a new session"
        self.say(f"connected to {self.broker} as {self.options.client_id!r}; the broker {state}")
        if self.options.mqtt_version == "5":
            from paho.mqtt.subscribeoptions import SubscribeOptions

            subs = [(t, SubscribeOptions(qos=1)) for t in self.options.topics]
        else:
            subs = [(t, 1) for t in self.options.topics]  # type: ignore[misc]  # paho takes (topic, qos)
        client.subscribe(subs)

    def _on_connect_fail(self, client, userdata) -> None:
        self._problem(f"cannot reach the broker {self.broker}; retrying with backoff")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stopping and not self._refused:  # a refusal was said already
            self._problem(f"lost the broker {self.broker} ({reason_code}); reconnecting")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [
            t for t, rc in zip(self.options.topics, reason_codes, strict=False) if rc.is_failure
        ]
        if refused:
            self._problem(f"the broker refused the subscription to {', '.join(refused)}")
        self.say(f"subscribed to {', '.join(self.options.topics)} at QoS 1")
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        item = _Message(
            msg.topic,
            msg.payload,
            msg.mid,
            msg.qos,
            bool(msg.dup),
            time.time_ns() // 1000,
            self._epoch,
        )
        # Blocks when full (3.1.1 with a broker in-flight limit above ours): TCP backpressure.
        self._inbox.put(item)

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            self._last_problem = text
            self.say(text)

    # -- the writer side (the caller's thread) ---------------------------------------------
    _stopping = False
    _refused = False

    def run(self, stop: threading.Event, *, report_every: float = 10.0) -> Stats:
        try:
            self._load_sensors(stop)
        except _Interrupted:
            return self.stats
        self._client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.options.keepalive,
            clean_start=False if self.options.mqtt_version == "5" else 3,
            properties=self._connect_properties(),
        )
        self._client.loop_start()
        # Two stages: this thread takes and parses batch k+1 while the writer commits batch k
        # and acknowledges it; the database's round trip overlaps the parsing.
        writer = threading.Thread(target=self._writer, args=(stop,), name="mqtt-writer")
        writer.start()
        next_report = time.monotonic() + report_every
        reported = 0
        try:
            while not stop.is_set() and writer.is_alive():
                batch = self._take_batch(stop)
                if batch and not self._hand_over((batch, *self._parse(batch, stop)), stop):
                    break
                if report_every and time.monotonic() >= next_report:
                    self._report(self.stats.readings - reported, report_every)
                    reported = self.stats.readings
                    next_report = time.monotonic() + report_every
        except _Interrupted:
            pass
        finally:
            stop.set()  # also on an error here: the writer then gives up retrying
            self._hand_over(None, stop, final=True)
            writer.join()
            self._stopping = True
            # What is still queued was never acknowledged: the broker keeps it for next time.
            self._client.disconnect()
            self._client.loop_stop()
        if self._writer_error is not None:
            raise self._writer_error
        return self.stats

    def _hand_over(self, item, stop: threading.Event, *, final: bool = False) -> bool:
        """Give the writer a parsed batch (or None: finish); False when it cannot take one."""
        while self._writer_alive:
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                if stop.is_set() and not final:
                    return False
        return False

    def _writer(self, stop: threading.Event) -> None:
        try:
            while (item := self._handoff.get()) is not None:
                batch, rows, letters = item
                self._write(rows, letters, batch, stop)
                self.stats.messages += len(batch)
                self.stats.batches += 1
                self.stats.last_commit_us = time.time_ns() // 1000
                self._ack(batch)
        except _Interrupted:
            pass  # stopped while the store was down: the batch stays unacknowledged
        except BaseException as exc:  # a bug: stop the connector and say so
            self._writer_error = exc
        finally:
            self._writer_alive = False

    def _report(self, n: int, every: float) -> None:
        ages = self.stats.age_percentiles()
        self.stats.reset_ages()
        age = f"; reading age at commit p50 {ages[0]:.3f} s, p95 {ages[1]:.3f} s" if ages else ""
        self.say(
            f"{self.stats.readings:,} readings stored ({n / every:,.0f}/s), "
            f"{self.stats.dead_letters:,} dead letters, {len(self._inbox):,} queued{age}"
        )

    def _load_sensors(self, stop: threading.Event) -> None:
        found = self._retrying(self.store.list_sensors, stop)
        self._sensor_ids = {s.name: s.id for s in found}

    def _take_batch(self, stop: threading.Event) -> list[_Message]:
        # Also flushed when nothing arrived for IDLE_FLUSH_S: perhaps the broker's in-flight
        # window is full (MQTT 3.1.1: its max_inflight_messages), and waiting only adds delay.
        return self._inbox.take(
            self.options.batch_size,
            first_wait=0.2,
            window=self.options.flush_ms / 1000,
            idle=IDLE_FLUSH_S,
        )

    def _ack(self, batch: list[_Message]) -> None:
        # Packet ids of a session the broker no longer has would acknowledge other messages:
        # those are skipped (the broker redelivers them; the upsert stores them once).
        with self._ack_lock:
            epoch = self._epoch
            ack = self._client.ack
            for m in batch:
                if m.epoch == epoch:
                    ack(m.mid, m.qos)

    # -- parsing ---------------------------------------------------------------------------
    def _parse(self, batch: list[_Message], stop: threading.Event):
        """Rows ``[(key, ts_us, value)]`` with their message index, dead letters, and names."""
        opts = self.options
        fields = opts.json_fields
        fmt = opts.fmt
        keys: list[str] = []
        ts: list[int] = []
        values: list[float] = []
        owner: list[int] = []
        letters: list[tuple[int, DeadLetter]] = []
        for i, m in enumerate(batch):
            if len(m.payload) > opts.max_payload:
                letters.append(
                    (
                        i,
                        _letter(
                            m,
                            f"payload of {len(m.payload):,} bytes exceeds "
                            f"--max-payload {opts.max_payload:,}",
                            "payload_too_large",
                        ),
                    )
                )
                continue
            kind = fmt
            if kind == "auto":
                kind = (
                    "sparkplug"
                    if m.topic.startswith(NAMESPACE + "/")
                    else "json"
                    if m.payload[:1] in (b"{", b"[", b" ")
                    else "number"
                )
            try:
                if kind == "sparkplug":
                    decoded = self._sparkplug.handle(
                        m.topic, m.payload, received_us=m.received_us, dup=m.dup
                    )
                    if decoded.rebirth is not None:
                        self._request_rebirth(decoded.rebirth)
                    self.stats.historical += decoded.historical
                    for key, t, v in decoded.readings:
                        keys.append(key)
                        ts.append(t)
                        values.append(v)
                        owner.append(i)
                    if decoded.problems:
                        reason = "; ".join(decoded.problems)
                        letters.append((i, _letter(m, reason, decoded.kind)))
                    continue
                if kind == "json":
                    t, v = parse_json(m.payload, fields, m.received_us)
                else:
                    t, v = parse_number(m.payload, m.received_us)
            except (PayloadError, SparkplugError) as exc:
                letters.append((i, _letter(m, f"{kind}: {exc}", exc.kind)))
                continue
            keys.append(m.topic)
            ts.append(t)
            values.append(v)
            owner.append(i)
        sids, refused = self._sensor_ids_for(keys, stop)
        for j in refused:
            i = owner[j]
            kind, reason = refused[j]
            letters.append((i, _letter(batch[i], reason, kind)))
        keep = [j for j in range(len(keys)) if j not in refused] if refused else None
        if keep is not None:
            sids = [sids[j] for j in keep]
            ts = [ts[j] for j in keep]
            values = [values[j] for j in keep]
            owner = [owner[j] for j in keep]
        return (sids, ts, values, owner), letters

    def _sensor_ids_for(
        self, keys: list[str], stop: threading.Event
    ) -> tuple[list[int], dict[int, tuple[str, str]]]:
        """The sensor id of each key (-1 where refused) and why (kind, reason) each refused
        one was."""
        name_of = self.options.topic_map.name
        ids = self._sensor_ids
        out: list[int] = []
        refused: dict[int, tuple[str, str]] = {}
        for j, key in enumerate(keys):
            name = name_of(key)
            if name is None:
                why = f"{key!r} has no sensor in {self.options.topic_map.describe()}"
                refused[j] = ("unmapped_topic", why)
                out.append(-1)
                continue
            sid = ids.get(name)
            if sid is None:
                if not self.options.create_sensors:
                    why = f"unknown sensor {name!r} (new sensors are refused)"
                    refused[j] = ("unknown_sensor", why)
                    out.append(-1)
                    continue
                sid = self._create_sensor(name, stop)
            out.append(sid)
        return out, refused

    def _create_sensor(self, name: str, stop: threading.Event) -> int:
        opts = self.options
        sensor = self._retrying(
            lambda: self.store.ensure_sensor(
                name,
                source=Source.MQTT,
                interval=opts.interval,
                unit=opts.topic_map.unit(name) or opts.unit,  # the mapping's, else --unit
            ),
            stop,
        )
        self._sensor_ids[name] = sensor.id
        return sensor.id

    def _request_rebirth(self, t) -> None:
        topic = f"{NAMESPACE}/{t.group}/NCMD/{t.node}"
        self._client.publish(topic, rebirth_request(), qos=0)
        self.say(f"asked {t.group}/{t.node} for a rebirth ({topic})")

    # -- writing ---------------------------------------------------------------------------
    def _write(self, rows, letters, batch, stop: threading.Event) -> None:
        sids, ts, values, _ = rows
        dead = [d for _, d in letters]
        frame = _frame(sids, ts, values)
        try:
            self.stats.readings += self._retrying(lambda: self.store.write_batch(frame, dead), stop)
            self.stats.dead_letters += len(dead)
            self.stats.add_ages(time.time_ns() // 1000 - frame["ts"])
        except _Interrupted:
            raise
        except PlantcastError as exc:
            # Refused for a reason a retry will not fix: find the messages that cause it.
            self._problem(f"the database refused a batch ({exc}); writing it message by message")
            self._write_one_by_one(rows, letters, batch, stop)

    def _write_one_by_one(self, rows, letters, batch, stop: threading.Event) -> None:
        sids, ts, values, owner = rows
        by_message: dict[int, list[int]] = {}
        for j, i in enumerate(owner):
            by_message.setdefault(i, []).append(j)
        dead = dict(letters)
        for i, js in by_message.items():
            frame = _frame([sids[j] for j in js], [ts[j] for j in js], [values[j] for j in js])
            extra = [dead.pop(i)] if i in dead else []
            try:
                written = self._retrying(
                    lambda f=frame, e=extra: self.store.write_batch(f, e), stop
                )
                self.stats.readings += written
                self.stats.dead_letters += len(extra)
            except _Interrupted:
                raise
            except PlantcastError as exc:
                letter = _letter(batch[i], f"the database refused it: {exc}", "store_refused")
                self._retrying(
                    lambda d=letter: self.store.write_batch(_frame([], [], []), [d]), stop
                )
                self.stats.dead_letters += 1
        if dead:
            rest = list(dead.values())
            self._retrying(lambda: self.store.write_batch(_frame([], [], []), rest), stop)
            self.stats.dead_letters += len(rest)

    def _retrying(self, call, stop: threading.Event):
        """``call()``, retried with backoff (0.5 s doubling to 30 s) while the store is down."""
        delay = 0.5
        while True:
            try:
                return call()
            except StoreUnavailable as exc:
                self._problem(f"{exc}; retrying with backoff")
                if stop.wait(delay):
                    raise _Interrupted from None
                delay = min(delay * 2, 30)


class _Interrupted(Exception):
    """Stopped while the store was down: the batch stays unacknowledged, for next time."""


def _frame(sids, ts, values) -> dict:
    return {
        "sensor_id": np.asarray(sids, dtype=np.int64),
        "ts": np.asarray(ts, dtype=np.int64),
        "value": np.asarray(values, dtype=np.float64),
    }


def _letter(m: _Message, reason: str, kind: str) -> DeadLetter:
    return DeadLetter(
        source="mqtt",
        topic=m.topic,
        payload=bytes(m.payload),
        reason=reason,
        kind=kind,
        received_at=pd.Timestamp(m.received_us, unit="us", tz="UTC"),
    )
