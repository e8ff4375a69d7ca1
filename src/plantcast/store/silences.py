"""Silences (maintenance windows): their rows, and which one covers an alert as it is written.

A :class:`Silencer` is asked by :mod:`plantcast.store.alerts` on the connection that inserts an
alert; a transaction keeps one for all its alerts (a detection pass or batch writes many in
one): one query for every silence at its first alert, each alert's start then checked in
memory (weekly recurrences in Python), and, only if a silence of a sensor or an asset is on
then, the sensor's name and assets to match their scope (its own, its assets', everyone's).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Row, inspect, or_, select

from plantcast.core.errors import NotFound
from plantcast.core.recurrence import Weekly
from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.store.schema import asset_sensors, assets, sensors, silences

SCOPES = ("sensor", "asset", "all")


@dataclass(frozen=True)
class Silence:
    id: int
    scope: str  # sensor, asset, all
    target: str | None  # the sensor's or asset's name; None for all
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp | None  # None: a recurrence without an end
    recurrence: str | None  # "sat 06:00 8h" (weekly windows), None: one range
    reason: str
    author: str
    created_at: pd.Timestamp
    ended_at: pd.Timestamp | None  # ended early

    @property
    def until(self) -> pd.Timestamp | None:
        """When it stops silencing: its end, or when it was ended, whichever is first."""
        ends = [t for t in (self.ends_at, self.ended_at) if t is not None]
        return min(ends) if ends else None

    def windows(self, start: TimeLike, end: TimeLike) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The silenced spans overlapping ``[start, end)``, clipped to it and to the silence's
        own life (``starts_at`` to ``until``)."""
        lo = max(to_utc(start), self.starts_at)
        hi = to_utc(end) if self.until is None else min(to_utc(end), self.until)
        if hi <= lo:
            return []
        if self.recurrence is None:
            return [(lo, hi)]
        return [(max(a, lo), min(b, hi)) for a, b in Weekly.parse(self.recurrence).windows(lo, hi)]

    def covers(self, ts: TimeLike) -> bool:
        t = to_utc(ts)
        return bool(self.windows(t, t + pd.Timedelta("1us")))

    @property
    def label(self) -> str:
        return "everything" if self.scope == "all" else f"{self.scope} {self.target}"


def _to_silence(row: Row[Any]) -> Silence:
    return Silence(
        id=row.id,
        scope=row.scope,
        target=row.target,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        recurrence=row.recurrence,
        reason=row.reason,
        author=row.author,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def insert_silence(
    conn: Connection,
    scope: str,
    target: str | None,
    starts_at: TimeLike,
    ends_at: TimeLike | None,
    recurrence: str | None,
    reason: str,
    author: str,
) -> Silence:
    values = {
        "scope": scope,
        "target": target,
        "starts_at": to_utc(starts_at),
        "ends_at": None if ends_at is None else to_utc(ends_at),
        "recurrence": recurrence,
        "reason": reason,
        "author": author,
    }
    new_id = conn.execute(silences.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]  # never None after an INSERT
    return get_silence(conn, int(new_id))


def get_silence(conn: Connection, silence_id: int) -> Silence:
    row = conn.execute(select(silences).where(silences.c.id == int(silence_id))).first()
    if row is None:
        raise NotFound(f"no silence with id {silence_id}")
    return _to_silence(row)


def end_silence(conn: Connection, silence_id: int, at: TimeLike) -> Silence:
    conn.execute(
        silences.update().where(silences.c.id == int(silence_id)).values(ended_at=to_utc(at))
    )
    return get_silence(conn, silence_id)


def list_silences(
    conn: Connection,
    *,
    scope: str | None = None,
    target: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    targets: dict[str, list[str]] | None = None,
    limit: int = 500,
) -> list[Silence]:
    """Newest first. ``start``/``end``: only silences whose life overlaps that span (a
    recurrence's windows are not checked here: see :meth:`Silence.windows`). ``targets``:
    ``{scope: [names]}``; a silence of scope all always matches."""
    q = select(silences)
    if scope is not None:
        q = q.where(silences.c.scope == scope)
    if target is not None:
        q = q.where(silences.c.target == target)
    if targets is not None:
        ors = [silences.c.scope == "all"]
        ors += [
            (silences.c.scope == s) & silences.c.target.in_(names)
            for s, names in targets.items()
            if names
        ]
        q = q.where(or_(*ors))
    if start is not None:
        a = to_utc(start)
        q = q.where(silences.c.ends_at.is_(None) | (silences.c.ends_at > a))
        q = q.where(silences.c.ended_at.is_(None) | (silences.c.ended_at > a))
    if end is not None:
        q = q.where(silences.c.starts_at < to_utc(end))
    q = q.order_by(silences.c.id.desc()).limit(limit)
    return [_to_silence(r) for r in conn.execute(q)]


def targets_of_sensor(conn: Connection, sensor_id: int) -> dict[str, list[str]]:
    """What a silence may name to cover this sensor: ``{"sensor": [its name], "asset": […]}``."""
    name = conn.execute(select(sensors.c.name).where(sensors.c.id == sensor_id)).scalar()
    of_assets = select(assets.c.name).join(asset_sensors, asset_sensors.c.asset_id == assets.c.id)
    names = conn.execute(of_assets.where(asset_sensors.c.sensor_id == sensor_id)).scalars().all()
    return {"sensor": [] if name is None else [name], "asset": list(names)}


_HAS_SILENCES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_table(conn: Connection) -> bool:
    """A database made before silences existed has none until `plantcast init`."""
    engine = conn.engine
    if engine not in _HAS_SILENCES:
        if not inspect(conn).has_table(silences.name):
            return False
        _HAS_SILENCES.add(engine)
    return True


class Silencer:
    """Which silence covers an alert's start, for the alerts of one transaction: every silence
    is read once, at the first alert asked about (silences are few: people make them), and
    each alert is checked in memory. A sensor's (or asset's) names are read only when a silence
    of a sensor or an asset is on at the alert's start, once per sensor. A transaction calls
    :meth:`forget` when silences or assets change in it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._silences: list[Silence] | None = None
        self._targets: dict[tuple[int | None, int | None], dict[str, list[str]]] = {}

    def forget(self) -> None:
        """Read everything again at the next alert."""
        self._silences = None
        self._targets.clear()

    def covering(
        self, sensor_id: int | None, ts: TimeLike, asset_id: int | None = None
    ) -> Silence | None:
        """The silence covering this sensor (or, ``sensor_id`` None, this asset) at ``ts``
        (the oldest, if several), else None."""
        t = to_utc(ts)
        live = [x for x in self._all() if x.covers(t)]  # oldest first
        if not live:
            return None
        scoped = any(x.scope != "all" for x in live)
        targets = self._targets_of(sensor_id, asset_id) if scoped else {}
        return next(
            (x for x in live if x.scope == "all" or x.target in targets.get(x.scope, ())), None
        )

    def _all(self) -> list[Silence]:
        if self._silences is None and not _has_table(self.conn):
            self._silences = []
        if self._silences is None:
            rows = self.conn.execute(select(silences).order_by(silences.c.id)).all()
            self._silences = [_to_silence(r) for r in rows]
        return self._silences

    def _targets_of(self, sensor_id: int | None, asset_id: int | None) -> dict[str, list[str]]:
        key = (sensor_id, None if sensor_id is not None else asset_id)
        if key not in self._targets:
            if sensor_id is not None:
                self._targets[key] = targets_of_sensor(self.conn, sensor_id)
            else:
                query = select(assets.c.name).where(assets.c.id == asset_id)
                name = self.conn.execute(query).scalar()
                self._targets[key] = {"asset": [] if name is None else [name]}
        return self._targets[key]
