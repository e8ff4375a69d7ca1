"""Dead letters: what a live connector received but could not store, kept and counted.

A payload is kept up to :data:`PAYLOAD_CAP` bytes (its full size is recorded), so one huge
message cannot bloat the table. Rows are never retried: they are for a person to look at. Each
has a ``kind``, a short stable code that counts group by (``json_not_number``, ``nan``,
``unknown_sensor``, ``payload_too_large``, …), and a ``reason``: the detail, with the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, func, inspect, select

from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.store.schema import dead_letters

PAYLOAD_CAP = 4096


@dataclass(frozen=True)
class DeadLetter:
    source: str  # "mqtt" or "opcua"
    topic: str  # the MQTT topic or OPC UA node id
    payload: bytes
    reason: str
    received_at: pd.Timestamp | None = None  # default: now
    kind: str = "other"  # a short stable code; the reason holds the detail
    id: int | None = None
    payload_size: int | None = None  # set when read back: the size before the cap


def add_dead_letters(conn: Connection, letters: Iterable[DeadLetter]) -> int:
    rows = [
        {
            "source": d.source,
            "topic": d.topic,
            "payload": bytes(d.payload[:PAYLOAD_CAP]),
            "payload_size": len(d.payload),
            "reason": d.reason,
            "kind": d.kind,
            **({"received_at": to_utc(d.received_at)} if d.received_at is not None else {}),
        }
        for d in letters
    ]
    if rows:
        # Rows with and without received_at take different column sets: insert each alike.
        for has_time in (True, False):
            part = [r for r in rows if ("received_at" in r) is has_time]
            if part:
                conn.execute(dead_letters.insert(), part)
    return len(rows)


def _filtered(q: Select[Any], source: str | None, since: TimeLike | None) -> Select[Any]:
    if source is not None:
        q = q.where(dead_letters.c.source == source)
    if since is not None:
        q = q.where(dead_letters.c.received_at >= to_utc(since))
    return q


def list_dead_letters(
    conn: Connection, *, source: str | None = None, since: TimeLike | None = None, limit: int = 50
) -> list[DeadLetter]:
    """The newest first."""
    q = _filtered(select(dead_letters), source, since)
    q = q.order_by(dead_letters.c.received_at.desc(), dead_letters.c.id.desc()).limit(limit)
    return [
        DeadLetter(
            source=r.source,
            topic=r.topic,
            payload=bytes(r.payload),
            reason=r.reason,
            received_at=r.received_at,
            id=r.id,
            payload_size=r.payload_size,
            kind=r.kind,
        )
        for r in conn.execute(q)
    ]


def count_dead_letters(
    conn: Connection, *, source: str | None = None, since: TimeLike | None = None
) -> dict[str, int]:
    """Counts by kind: ``{kind: n}``."""
    q = _filtered(
        select(dead_letters.c.kind, func.count()).group_by(dead_letters.c.kind),
        source,
        since,
    )
    return {kind: int(n) for kind, n in conn.execute(q)}


def upgrade(conn: Connection) -> list[str]:
    """Bring an older ``dead_letters`` table up to this schema (``kind`` came later); rows
    stored before get ``other``. Returns what was done."""
    columns = {c["name"] for c in inspect(conn).get_columns("dead_letters")}
    if "kind" in columns:
        return []
    conn.exec_driver_sql(
        "ALTER TABLE dead_letters ADD COLUMN kind VARCHAR(40) NOT NULL DEFAULT 'other'"
    )
    return ["dead_letters.kind added"]
