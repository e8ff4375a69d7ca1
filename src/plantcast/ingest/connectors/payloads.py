"""JSON and plain-number MQTT payloads → one reading ``(ts_us, value)``, or why not.

JSON: an object with a value field (``value`` unless configured) and an optional time field
(``ts``): an ISO 8601 string (naive = UTC) or epoch seconds, milliseconds or microseconds (told
apart by size). Without a time the message is stamped on receipt. Values are numbers (true and
false count as 1 and 0); NaN, infinities, strings and objects are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

# Readings before 1970 or after 2200 are taken for a unit mistake, not a plant's clock.
_MIN_US, _MAX_US = 0, 7_258_118_400_000_000


class PayloadError(ValueError):
    """Why a payload is not a reading; its message becomes the dead letter's reason and
    ``kind`` (a short stable code) what dead letters are counted by."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class JsonFields:
    value: str = "value"
    ts: str = "ts"


def parse_json(payload: bytes, fields: JsonFields, received_us: int) -> tuple[int, float]:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}", "not_json") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"expected a JSON object, got {type(doc).__name__}", "json_not_object")
    if fields.value not in doc:
        raise PayloadError(f"no {fields.value!r} field", "json_no_value")
    value = _number(doc[fields.value], fields.value)
    raw_ts = doc.get(fields.ts)
    ts_us = received_us if raw_ts is None else parse_ts(raw_ts, fields.ts)
    return ts_us, value


def parse_number(payload: bytes, received_us: int) -> tuple[int, float]:
    try:
        text = payload.decode("ascii").strip()
        value = float(text)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError(f"not a number: {payload[:40]!r}", "not_number") from None
    if not math.isfinite(value):
        raise PayloadError(f"{text} is not a finite number", "nan")
    return received_us, value


def _number(raw, name: str) -> float:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if not isinstance(raw, int | float):
        raise PayloadError(
            f"{name!r} is a {type(raw).__name__}, not a number: {raw!r:.40}", "json_not_number"
        )
    value = float(raw)
    if not math.isfinite(value):
        raise PayloadError(f"{name!r} is {raw}, not a finite number", "nan")
    return value


def parse_ts(raw, name: str = "ts") -> int:
    """Epoch µs from an ISO 8601 string or epoch seconds / ms / µs."""
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            raise PayloadError(
                f"{name!r} is not an ISO 8601 time: {raw!r:.40}", "bad_time"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        us = int(dt.timestamp()) * 1_000_000 + dt.microsecond
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise PayloadError(f"{name!r} is {raw}, not a time", "bad_time")
        magnitude = abs(raw)
        scale = 1 if magnitude >= 1e14 else 1_000 if magnitude >= 1e11 else 1_000_000
        us = round(raw * scale)
    else:
        raise PayloadError(
            f"{name!r} is a {type(raw).__name__}, not a time: {raw!r:.40}", "bad_time"
        )
    if not _MIN_US <= us <= _MAX_US:
        raise PayloadError(f"{name!r} {raw!r:.40} is outside 1970-2200", "time_out_of_range")
    return us
