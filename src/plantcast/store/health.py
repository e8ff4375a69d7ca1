"""What ``serve`` runs and how far behind it is: component states, job runs, and the lags
(age of the newest reading, detection lag, outbox depth and age) that ``plantcast status``,
``/health`` and ``/metrics`` show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from plantcast.core.timeutil import to_utc, utcnow
from plantcast.store import readings as _readings
from plantcast.store.engine import upsert
from plantcast.store.schema import (
    alerts,
    dead_letters,
    detector_state,
    notifications,
    readings,
    sensors,
    serve_components,
    serve_jobs,
)

__all__ = ["ComponentState", "JobState", "Lags"]


@dataclass(frozen=True)
class ComponentState:
    name: str
    state: str  # running, backoff, stopped, failed
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    last_error: str | None = None
    started_at: pd.Timestamp | None = None
    updated_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class JobState:
    name: str
    runs: int = 0
    failures: int = 0
    last_started_at: pd.Timestamp | None = None
    last_finished_at: pd.Timestamp | None = None
    last_outcome: str | None = None  # ok, failed
    last_seconds: float | None = None
    last_detail: str | None = None
    next_run_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class Lags:
    """How far behind the plant the data and its consumers are, at ``at``."""

    at: pd.Timestamp
    sensors: int
    newest_reading_age_s: float | None  # None: no reading at all
    detection_lag_s: float | None  # the most behind sensor: newest reading − scored until
    detection_lag_p95_s: float | None
    outbox_depth: int
    outbox_oldest_age_s: float | None
    open_alerts: int
    alerts_by_status: dict[str, int]
    dead_letters: int
    readings_last_minute: int  # stored with a time in the minute before ``at``


def put_components(
    conn: Connection, states: Iterable[ComponentState], *, only: bool = False
) -> None:
    """Write these components' states; ``only``: and forget every other (a new serve)."""
    now = utcnow()
    rows = [
        {
            "name": s.name,
            "state": s.state,
            "pid": s.pid,
            "restarts": s.restarts,
            "last_exit": s.last_exit,
            "last_error": s.last_error,
            "started_at": None if s.started_at is None else to_utc(s.started_at),
            "updated_at": now,
        }
        for s in states
    ]
    if only:
        names = [r["name"] for r in rows]
        conn.execute(delete(serve_components).where(serve_components.c.name.not_in(names)))
    upsert(conn, serve_components, rows, ("name",))


def list_components(conn: Connection) -> list[ComponentState]:
    q = select(serve_components).order_by(serve_components.c.name)
    return [ComponentState(**r._mapping) for r in conn.execute(q)]


def put_job(conn: Connection, job: JobState) -> None:
    row = {k: getattr(job, k) for k in JobState.__dataclass_fields__}
    for key in ("last_started_at", "last_finished_at", "next_run_at"):
        row[key] = None if row[key] is None else to_utc(row[key])
    upsert(conn, serve_jobs, [row], ("name",))


def get_job(conn: Connection, name: str) -> JobState | None:
    row = conn.execute(select(serve_jobs).where(serve_jobs.c.name == name)).first()
    return None if row is None else JobState(**row._mapping)


def list_jobs(conn: Connection) -> list[JobState]:
    q = select(serve_jobs).order_by(serve_jobs.c.name)
    return [JobState(**r._mapping) for r in conn.execute(q)]


def lags(conn: Connection, now: pd.Timestamp | None = None) -> Lags:
    """The lags at ``now``: one index seek per sensor for its newest reading, a scan of
    ``detector_state`` (a row per sensor and detector) and counts of the outbox and alerts."""
    now = utcnow() if now is None else to_utc(now)
    ids = [int(i) for i in conn.execute(select(sensors.c.id)).scalars()]
    newest = _readings.edge_readings(conn, [(i, None) for i in ids], last=True) if ids else {}
    scored: dict[int, pd.Timestamp] = {}
    q = select(detector_state.c.sensor_id, func.min(detector_state.c.scored_until)).group_by(
        detector_state.c.sensor_id
    )
    for sid, until in conn.execute(q):
        scored[int(sid)] = until
    behind = [
        max(0.0, (ts - scored[sid]).total_seconds())
        for sid, (ts, _) in newest.items()
        if sid in scored
    ]
    undelivered = notifications.c.delivered_at.is_(None)
    depth, oldest = conn.execute(
        select(func.count(), func.min(notifications.c.created_at)).where(undelivered)
    ).one()
    by_status = {
        str(s): int(n)
        for s, n in conn.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status))
    }
    letters = conn.execute(select(func.count()).select_from(dead_letters)).scalar_one()
    recent = _count_since(conn, ids, now - pd.Timedelta(minutes=1))
    oldest_ts = None if oldest is None else serve_time(conn, oldest)
    return Lags(
        at=now,
        sensors=len(ids),
        newest_reading_age_s=(
            max(0.0, (now - max(ts for ts, _ in newest.values())).total_seconds())
            if newest
            else None
        ),
        detection_lag_s=max(behind) if behind else None,
        detection_lag_p95_s=float(pd.Series(behind).quantile(0.95)) if behind else None,
        outbox_depth=int(depth),
        outbox_oldest_age_s=None if oldest_ts is None else (now - oldest_ts).total_seconds(),
        open_alerts=by_status.get("open", 0),
        alerts_by_status=by_status,
        dead_letters=int(letters),
        readings_last_minute=recent,
    )


def _count_since(conn: Connection, ids: list[int], since: pd.Timestamp) -> int:
    """Readings of these sensors at or after ``since``: a range of the primary key each."""
    total = 0
    for lo in range(0, len(ids), 500):
        chunk = ids[lo : lo + 500]
        q = (
            select(func.count())
            .select_from(readings)
            .where(readings.c.sensor_id.in_(chunk), readings.c.ts >= since)
        )
        total += int(conn.execute(q).scalar_one())
    return total


def serve_time(conn: Connection, value: Any) -> pd.Timestamp:
    """A time read through an aggregate (which skips the column type's conversion)."""
    if isinstance(value, int):  # SQLite: epoch microseconds
        return pd.Timestamp(value * 1_000, tz="UTC")
    return to_utc(value)
