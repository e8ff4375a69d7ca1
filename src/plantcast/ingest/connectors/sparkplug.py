"""Sparkplug B for the MQTT connector: topics, payload decoding, alias tables, seq and rebirth.

The protobuf classes are generated from Eclipse Tahu's ``sparkplug_b.proto`` (EPL-2.0, kept
beside this file as it ships in the pysparkplug 0.6.1 sdist on PyPI) by protoc from grpcio-tools
1.85 (protobuf gencode 7.35.1). pysparkplug itself pins paho-mqtt < 2, so it is not a dependency.
To regenerate after changing the protobuf runtime's major version::

    python -m venv /tmp/gen && /tmp/gen/bin/pip install grpcio-tools
    cd src/plantcast/ingest/connectors
    /tmp/gen/bin/python -m grpc_tools.protoc --proto_path=. --python_out=. sparkplug_b.proto

A host application's duties that matter to a historian are kept here, per edge node:
NBIRTH/DBIRTH announce metric names with aliases, NDATA/DDATA carry values by alias, every
node message carries ``seq`` (0-255, wrapping). A gap in ``seq`` or data from a node whose
birth was not seen means messages were lost or aliases are unknown: the message goes to dead
letters and a rebirth is requested (an NCMD with ``Node Control/Rebirth = true``); the node's
data goes to dead letters until its NBIRTH arrives. ``is_historical`` metrics are stored at
their own timestamps like any other (that is what a historian does with them) and counted;
``is_transient`` ones are not stored, as the specification asks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from plantcast.ingest.connectors import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
SEQ_TYPES = frozenset({"NBIRTH", "NDATA", "DBIRTH", "DDATA", "DDEATH"})
DATA_TYPES = frozenset({"NBIRTH", "NDATA", "DBIRTH", "DDATA"})
IGNORED_TYPES = frozenset({"NCMD", "DCMD", "STATE"})
REBIRTH_EVERY_S = 5.0  # ask one node for a rebirth at most this often

# Datatype numbers of the specification (enum DataType in sparkplug_b.proto).
INT_BITS = {1: 8, 2: 16, 3: 32, 4: 64}  # Int8 … Int64: two's complement in an unsigned field
UINT_TYPES = frozenset({5, 6, 7, 8})
FLOAT, DOUBLE, BOOLEAN = 9, 10, 11


class SparkplugError(ValueError):
    """A Sparkplug message that cannot be read (bad topic or protobuf)."""

    kind = "sparkplug_invalid"  # its dead letters' kind


@dataclass(frozen=True)
class SparkplugTopic:
    group: str
    kind: str  # NBIRTH, NDATA, DBIRTH, …
    node: str
    device: str | None

    @classmethod
    def parse(cls, topic: str) -> SparkplugTopic:
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            raise SparkplugError(f"not a Sparkplug B topic ({NAMESPACE}/GROUP/TYPE/NODE[/DEVICE])")
        return cls(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)

    def key(self, metric: str) -> str:
        """The name a metric's readings are mapped from: ``group/node[/device]/metric``."""
        device = f"/{self.device}" if self.device else ""
        return f"{self.group}/{self.node}{device}/{metric}"


def decode(payload: bytes) -> pb.Payload:
    message = pb.Payload()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise SparkplugError(f"not a Sparkplug B protobuf payload: {exc}") from None
    return message


def encode(
    metrics: list[dict], *, seq: int | None = None, timestamp_ms: int | None = None
) -> bytes:
    """A payload from metrics given as dicts (name, alias, datatype, value, timestamp,
    is_historical, is_transient); used by tests, benchmarks and simulated edge nodes."""
    message = pb.Payload()
    if timestamp_ms is not None:
        message.timestamp = timestamp_ms
    if seq is not None:
        message.seq = seq
    for spec in metrics:
        metric = message.metrics.add()
        for attr in ("name", "alias", "timestamp", "is_historical", "is_transient", "is_null"):
            if spec.get(attr) is not None:
                setattr(metric, attr, spec[attr])
        datatype = spec.get("datatype", DOUBLE)
        metric.datatype = datatype
        value = spec.get("value")
        if value is None:
            continue
        if datatype == BOOLEAN:
            metric.boolean_value = bool(value)
        elif datatype == FLOAT:
            metric.float_value = value
        elif datatype == DOUBLE:
            metric.double_value = value
        elif datatype in INT_BITS or datatype in UINT_TYPES:
            bits = INT_BITS.get(datatype, 64 if datatype == 8 else 32)
            raw = int(value) & ((1 << bits) - 1)
            if bits == 64:
                metric.long_value = raw
            else:
                metric.int_value = raw
        else:
            metric.string_value = str(value)
    return message.SerializeToString()


def rebirth_request() -> bytes:
    """The NCMD payload asking an edge node to publish its births again."""
    now_ms = int(time.time() * 1000)
    return encode(
        [{"name": REBIRTH_METRIC, "datatype": BOOLEAN, "value": True, "timestamp": now_ms}],
        timestamp_ms=now_ms,
    )


def metric_value(metric, datatype: int | None) -> float | None:
    """A metric's value as a float, or None when it is not a number (strings, bytes, …)."""
    kind = metric.WhichOneof("value")
    if kind is None or metric.is_null:
        return None
    raw = getattr(metric, kind)
    if datatype in INT_BITS and kind in ("int_value", "long_value"):
        bits = INT_BITS[datatype]
        raw &= (1 << bits) - 1
        return float(raw - (1 << bits) if raw >> (bits - 1) else raw)
    if kind in ("int_value", "long_value", "float_value", "double_value"):
        return float(raw)
    if kind == "boolean_value":
        return 1.0 if raw else 0.0
    return None


@dataclass
class _Node:
    expected_seq: int | None = None  # None: no NBIRTH seen since we started or its NDEATH
    aliases: dict[tuple[str | None, int], tuple[str, int | None]] = field(default_factory=dict)
    awaiting_rebirth: bool = False
    rebirth_asked_at: float = -math.inf


@dataclass
class Decoded:
    """What one message yields: readings ``(key, ts_us, value)``, problems, a node to rebirth."""

    readings: list[tuple[str, int, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rebirth: SparkplugTopic | None = None  # publish a rebirth request to this node
    historical: int = 0
    kind: str = ""  # the dead-letter kind of the first problem

    def problem(self, kind: str, message: str) -> None:
        self.problems.append(message)
        self.kind = self.kind or kind


class SparkplugHost:
    """The host application's view of every edge node: alias tables and expected ``seq``."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[str, str], _Node] = {}

    def handle(self, topic: str, payload: bytes, *, received_us: int, dup: bool) -> Decoded:
        """Decode one message. Raises :class:`SparkplugError` for a bad topic or protobuf."""
        if topic.startswith(f"{NAMESPACE}/STATE/"):
            return Decoded()  # a host application's online state (Sparkplug 3.0), not data
        t = SparkplugTopic.parse(topic)
        out = Decoded()
        if t.kind in IGNORED_TYPES:
            return out
        message = decode(payload)
        node = self._nodes.setdefault((t.group, t.node), _Node())
        if t.kind == "NDEATH":
            self._nodes.pop((t.group, t.node), None)
            return out
        if not self._sequence_ok(t, message, node, dup, out):
            return out
        if t.kind == "NBIRTH":
            node.aliases.clear()
        if t.kind in ("DBIRTH", "DDEATH"):
            for k in [k for k in node.aliases if k[0] == t.device]:
                del node.aliases[k]
        if t.kind in DATA_TYPES:
            self._metrics(t, message, node, received_us, out)
        return out

    def _sequence_ok(self, t, message, node: _Node, dup: bool, out: Decoded) -> bool:
        """Check ``seq``; on a gap or an unknown node, record why and ask for a rebirth."""
        if t.kind not in SEQ_TYPES:
            return True
        seq = message.seq if message.HasField("seq") else None
        if t.kind == "NBIRTH":
            node.expected_seq = None if seq is None else (seq + 1) % 256
            node.awaiting_rebirth = False
            return True
        if node.awaiting_rebirth or node.expected_seq is None:
            why = "after a seq gap" if node.awaiting_rebirth else "no NBIRTH seen for this node"
            out.problem("sparkplug_no_birth", f"{why}: waiting for the node's rebirth")
            self._ask_rebirth(t, node, out)
            return False
        if dup or seq is None:
            # A redelivery (connector or broker restart) repeats an old seq: not a gap.
            return True
        if seq != node.expected_seq:
            out.problem(
                "sparkplug_seq_gap",
                f"seq gap: expected {node.expected_seq}, got {seq} (messages lost upstream); "
                "rebirth requested",
            )
            node.awaiting_rebirth = True
            self._ask_rebirth(t, node, out)
            return False
        node.expected_seq = (seq + 1) % 256
        return True

    @staticmethod
    def _ask_rebirth(t: SparkplugTopic, node: _Node, out: Decoded) -> None:
        now = time.monotonic()
        if now - node.rebirth_asked_at >= REBIRTH_EVERY_S:
            node.rebirth_asked_at = now
            out.rebirth = t

    def _metrics(self, t, message, node: _Node, received_us: int, out: Decoded) -> None:
        birth = t.kind.endswith("BIRTH")
        default_us = message.timestamp * 1000 if message.HasField("timestamp") else received_us
        unknown: list[str] = []
        for metric in message.metrics:
            alias = metric.alias if metric.HasField("alias") else None
            datatype = metric.datatype if metric.HasField("datatype") else None
            if metric.name:
                name = metric.name
                if alias is not None and birth:
                    node.aliases[(t.device, alias)] = (name, datatype)
            elif alias is not None and (t.device, alias) in node.aliases:
                name, born_type = node.aliases[(t.device, alias)]
                datatype = born_type if datatype is None else datatype
            else:
                unknown.append(str(alias))
                continue
            if metric.is_transient or name == "bdSeq" or "Control/" in name:
                continue
            value = metric_value(metric, datatype)
            if value is None:
                continue  # strings, bytes, datasets, nulls: not a reading
            if not math.isfinite(value):
                out.problem("nan", f"metric {name!r}: {value} is not a finite number")
                continue
            ts = metric.timestamp * 1000 if metric.HasField("timestamp") else default_us
            out.historical += bool(metric.is_historical)
            out.readings.append((t.key(name), ts, value))
        if unknown:
            out.problem(
                "sparkplug_unknown_alias",
                f"unknown alias(es) {', '.join(unknown)}: rebirth requested",
            )
            self._ask_rebirth(t, node, out)
