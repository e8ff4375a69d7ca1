"""The notification outbox: destinations, and one row per alert transition per destination.

:func:`enqueue` is called by :mod:`plantcast.store.alerts` on the connection that changes the
alert, so the outbox row commits (or rolls back) with the alert itself: a transition is never
lost between "alert written" and "notification queued", whatever surface made it. The body is
frozen at that moment; a sender (:mod:`plantcast.notify`) delivers it, under the row's
idempotency key, until a receiver accepts it.
"""

from __future__ import annotations

import json
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, case, delete, func, inspect, select

from plantcast.core.errors import InputError, NotFound
from plantcast.store.schema import alerts, assets, notifications, notify_destinations, sensors

KINDS = ("webhook", "email")
EVENTS = (
    "opened",
    "acknowledged",
    "resolved",
    "reopened",
    "assigned",
    "commented",
    "labelled",
)


@dataclass(frozen=True)
class Destination:
    id: int
    name: str
    kind: str  # webhook, email
    target: str  # URL, or comma-separated addresses
    secret: str | None = None  # the stored signing secret, if any
    secret_env: str | None = None  # or the environment variable that holds it


@dataclass(frozen=True)
class Pending:
    """An outbox row that is due, with where it goes."""

    id: int
    destination: Destination
    alert_id: int
    event: str
    idempotency_key: str
    body: str
    attempts: int


def _destination(row: Row[Any]) -> Destination:
    return Destination(row.id, row.name, row.kind, row.target, row.secret, row.secret_env)


def add_destination(
    conn: Connection,
    name: str,
    kind: str,
    target: str,
    *,
    secret: str | None = None,
    secret_env: str | None = None,
) -> Destination:
    if kind not in KINDS:
        raise InputError(f"unknown destination kind {kind!r}; choose one of {', '.join(KINDS)}")
    taken = conn.execute(
        select(notify_destinations.c.id).where(notify_destinations.c.name == name)
    ).first()
    if taken is not None:
        raise InputError(f"a destination named {name!r} exists; remove it first", field="name")
    values: dict[str, str | None] = {"name": name, "kind": kind, "target": target}
    values |= {"secret": secret, "secret_env": secret_env}
    new_id = conn.execute(notify_destinations.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]  # never None after an INSERT
    return get_destination(conn, int(new_id))


def get_destination(conn: Connection, key: str | int) -> Destination:
    col = notify_destinations.c.id if isinstance(key, int) else notify_destinations.c.name
    row = conn.execute(select(notify_destinations).where(col == key)).first()
    if row is None:
        raise NotFound(f"no notification destination {key!r} (see `plantcast notify list`)")
    return _destination(row)


def list_destinations(conn: Connection) -> list[Destination]:
    q = select(notify_destinations).order_by(notify_destinations.c.id)
    return [_destination(r) for r in conn.execute(q)]


def remove_destination(conn: Connection, name: str) -> int:
    """Remove a destination and its outbox rows; returns how many were still undelivered."""
    dest = get_destination(conn, name)
    mine = notifications.c.destination_id == dest.id
    pending = conn.execute(
        select(func.count()).where(and_(mine, notifications.c.delivered_at.is_(None)))
    ).scalar()
    conn.execute(delete(notifications).where(mine))
    conn.execute(delete(notify_destinations).where(notify_destinations.c.id == dest.id))
    return int(pending or 0)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def alert_body(
    conn: Connection,
    alert_id: int,
    event: str,
    by: str,
    key: str,
    detail: dict[str, Any] | None = None,
) -> str:
    """The JSON a receiver gets for one transition (frozen in the outbox row); ``detail``
    carries what the transition adds (a comment's text)."""
    row = conn.execute(
        select(alerts, sensors.c.name.label("sensor"), sensors.c.unit, assets.c.name.label("asset"))
        .outerjoin(sensors, sensors.c.id == alerts.c.sensor_id)
        .outerjoin(assets, assets.c.id == alerts.c.asset_id)
        .where(alerts.c.id == alert_id)
    ).one()
    payload = {
        "event": f"alert.{event}",
        "by": by,
        "idempotency_key": key,
        "occurred_at": datetime.now(UTC).isoformat(),
        "alert": {
            "id": row.id,
            "sensor": row.sensor,  # None on an asset's alert
            "asset": row.asset,  # None on a sensor's alert
            "contributors": row.contributors or [],  # an asset's sensors, largest share first
            "unit": row.unit,
            "detector": row.detector,
            "detectors": row.detectors or [{"detector": row.detector, "score": row.score}],
            "status": row.status,
            "start": _iso(row.ts),
            "end": _iso(row.ends_at),
            "score": row.score,
            "value": row.value,
            "expected": row.expected,
            "assignee": row.assignee,
            "label": row.label,
        },
    }
    if detail:
        payload["detail"] = detail
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


_HAS_OUTBOX: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_outbox(conn: Connection) -> bool:
    """A database made before notifications existed has no outbox until `plantcast init`:
    alerts are still written there (and queue nothing)."""
    engine = conn.engine
    if engine not in _HAS_OUTBOX:
        if not inspect(conn).has_table(notify_destinations.name):
            return False
        _HAS_OUTBOX.add(engine)
    return True


def enqueue(
    conn: Connection, alert_id: int, event: str, *, by: str, detail: dict[str, Any] | None = None
) -> int:
    """Queue one notification of ``event`` per destination, on the alert's own connection;
    none for an alert raised inside a silence. ``detail``: what the event adds (a comment)."""
    if not _has_outbox(conn):
        return 0
    silenced = conn.execute(select(alerts.c.silenced).where(alerts.c.id == alert_id)).scalar()
    if silenced:  # raised inside a silence (maintenance window): nothing leaves
        return 0
    dests = conn.execute(select(notify_destinations.c.id)).scalars().all()
    rows = []
    for dest_id in dests:
        key = uuid.uuid4().hex
        body = alert_body(conn, alert_id, event, by, key, detail)
        rows.append(
            {
                "destination_id": dest_id,
                "alert_id": alert_id,
                "event": event,
                "idempotency_key": key,
                "body": body,
            }
        )
    if rows:
        conn.execute(notifications.insert(), rows)
    return len(rows)


def due(conn: Connection, now: datetime, *, limit: int, skip_locked: bool = False) -> list[Pending]:
    """Undelivered rows whose next attempt is due, oldest first. ``skip_locked`` (PostgreSQL):
    lock them for this transaction and pass over rows another sender holds.

    A destination gets an alert's transitions in order: a row waits while an earlier one of
    the same alert to the same destination is undelivered (retrying, or held by a sender)."""
    earlier = notifications.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.alert_id == notifications.c.alert_id,
            earlier.c.destination_id == notifications.c.destination_id,
            earlier.c.delivered_at.is_(None),
            earlier.c.id < notifications.c.id,
        )
        .exists()
    )
    q = (
        select(notifications, notify_destinations)
        .join(notify_destinations, notify_destinations.c.id == notifications.c.destination_id)
        .where(
            notifications.c.delivered_at.is_(None),
            notifications.c.next_attempt_at <= now,
            ~blocked,
        )
        .order_by(notifications.c.next_attempt_at, notifications.c.id)
        .limit(limit)
    )
    if skip_locked:
        q = q.with_for_update(skip_locked=True, of=notifications)
    out = []
    for r in conn.execute(q).mappings():
        dest = Destination(
            r[notify_destinations.c.id],
            r["name"],
            r["kind"],
            r["target"],
            r["secret"],
            r["secret_env"],
        )
        out.append(
            Pending(
                r[notifications.c.id],
                dest,
                r["alert_id"],
                r["event"],
                r["idempotency_key"],
                r["body"],
                r["attempts"],
            )
        )
    return out


def mark_delivered(conn: Connection, row_id: int, at: datetime) -> None:
    conn.execute(
        notifications.update()
        .where(notifications.c.id == row_id)
        .values(delivered_at=at, attempts=notifications.c.attempts + 1, last_error=None)
    )


def mark_failed(conn: Connection, row_id: int, error: str, retry_in: timedelta) -> None:
    conn.execute(
        notifications.update()
        .where(notifications.c.id == row_id)
        .values(
            attempts=notifications.c.attempts + 1,
            last_error=error[:1000],
            next_attempt_at=datetime.now(UTC) + retry_in,
        )
    )


def purge_delivered(conn: Connection, before: datetime) -> int:
    """Delete rows delivered before ``before`` (the outbox does not grow without bound)."""
    done = and_(notifications.c.delivered_at.is_not(None), notifications.c.delivered_at < before)
    return int(conn.execute(delete(notifications).where(done)).rowcount or 0)


def outbox_summary(conn: Connection) -> dict[int, dict[str, Any]]:
    """Per destination id: delivered and pending counts and the latest error of a pending row."""
    undelivered = notifications.c.delivered_at.is_(None)
    q = select(
        notifications.c.destination_id,
        func.count().label("total"),
        func.sum(case((undelivered, 1), else_=0)).label("pending"),
        func.max(case((undelivered, notifications.c.id))).label("last_pending"),
    ).group_by(notifications.c.destination_id)
    out: dict[int, dict[str, Any]] = {}
    for r in conn.execute(q):
        pending = int(r.pending or 0)
        error = None
        if r.last_pending is not None:
            error = conn.execute(
                select(notifications.c.last_error).where(notifications.c.id == r.last_pending)
            ).scalar()
        out[r.destination_id] = {
            "delivered": int(r.total) - pending,
            "pending": pending,
            "last_error": error,
        }
    return out


def list_outbox(conn: Connection, *, alert_id: int | None = None) -> list[dict[str, Any]]:
    """Every outbox row (tests and `notify list --outbox`), oldest first."""
    q = select(notifications).order_by(notifications.c.id)
    if alert_id is not None:
        q = q.where(notifications.c.alert_id == alert_id)
    return [dict(r._mapping) for r in conn.execute(q)]
