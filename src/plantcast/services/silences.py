"""Silences (maintenance windows): add, list and end them, each change with its audit entry.

A silence covers one sensor, an asset (each of its sensors) or everything, over one UTC range
or weekly windows ("sat 06:00 8h"). Detection goes on while one covers a sensor: its alerts
are stored marked silenced and queue no notification (``plantcast.store.alerts``). What a
chart shades comes from :func:`sensor_silences`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import InputError, Refused
from plantcast.core.recurrence import Weekly
from plantcast.core.timeutil import DurationLike, TimeLike, parse_duration, to_utc, utcnow
from plantcast.services.audit import jsonable
from plantcast.store import Store, Transaction
from plantcast.store.silences import SCOPES, Silence

__all__ = ["Silence", "SilenceWindow", "add_silence", "end_silence", "list_silences"]
MAX_REASON = 2000


@dataclass(frozen=True)
class SilenceWindow:
    """One silenced span of a sensor, as a chart shades it."""

    silence: Silence
    start: pd.Timestamp
    end: pd.Timestamp


def _fields(s: Silence) -> dict:
    return (
        jsonable(
            {
                "scope": s.scope,
                "target": s.target,
                "starts_at": s.starts_at,
                "ends_at": s.ends_at,
                "recurrence": s.recurrence,
                "reason": s.reason,
                "author": s.author,
            }
        )
        or {}
    )


def _scope(sensor: str | None, asset: str | None, everything: bool) -> tuple[str, str | None]:
    chosen: list[tuple[str, str | None]] = [
        (k, v) for k, v in (("sensor", sensor), ("asset", asset)) if v
    ]
    if everything:
        chosen.append(("all", None))
    if len(chosen) != 1:
        raise InputError(
            "a silence covers exactly one of: a sensor, an asset, or everything", field="scope"
        )
    return chosen[0]


def _check_target(tx: Transaction, scope: str, target: str | None) -> None:
    if scope == "sensor":
        tx.get_sensor(str(target))  # NotFound names the known sensors
    elif scope == "asset":
        tx.get_asset(str(target))


def add_silence(
    store: Store,
    *,
    reason: str,
    author: str,
    sensor: str | None = None,
    asset: str | None = None,
    everything: bool = False,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    duration: DurationLike | None = None,
    every: str | None = None,
) -> Silence:
    """A new silence: one range (``start`` — now by default — to ``end`` or for
    ``duration``), or with ``every`` weekly windows from ``start`` (until ``end``, if given)."""
    scope, target = _scope(sensor, asset, everything)
    if scope not in SCOPES:  # pragma: no cover - _scope makes only these
        raise InputError(f"unknown scope {scope!r}", field="scope")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("say why (a reason) the alerts are silenced", field="reason")
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason is longer than {MAX_REASON} characters", field="reason")
    starts = utcnow().floor("s") if start is None else to_utc(start)
    if end is not None and duration is not None:
        raise InputError("give an end or a duration, not both", field="duration")
    ends = None if end is None else to_utc(end)
    if duration is not None:
        length = parse_duration(duration, field="duration")
        if length <= pd.Timedelta(0):
            raise InputError("the duration must be more than 0", field="duration")
        ends = starts + length
    recurrence = None if every is None else Weekly.parse(every).text()
    if recurrence is None and ends is None:
        raise InputError(
            "a silence needs an end (--end or --for), or a weekly recurrence (--every)",
            field="end",
        )
    if ends is not None and ends <= starts:
        raise InputError(f"the end {ends} is not after the start {starts}", field="end")
    with store.transaction() as tx:
        _check_target(tx, scope, target)
        made = tx.insert_silence(scope, target, starts, ends, recurrence, reason, author)
        tx.audit(author, "silence.add", f"silence:{made.id}", None, _fields(made))
    return made


def end_silence(
    store: Store, silence_id: int, *, author: str, at: TimeLike | None = None
) -> Silence:
    """End a silence now (or at ``at``): alerts after that are notified again."""
    when = utcnow() if at is None else to_utc(at)
    with store.transaction() as tx:
        found = tx.get_silence(silence_id)
        if found.ended_at is not None:
            raise Refused(f"silence {silence_id} was already ended at {found.ended_at}")
        if found.until is not None and found.until <= when:
            raise Refused(f"silence {silence_id} is over (it ended at {found.until})")
        ended = tx.end_silence(silence_id, when)
        tx.audit(
            author,
            "silence.end",
            f"silence:{silence_id}",
            {"ended_at": None},
            jsonable({"ended_at": ended.ended_at}),
        )
    return ended


def list_silences(
    store: Store, *, include_past: bool = False, at: TimeLike | None = None, limit: int = 500
) -> list[Silence]:
    """Newest first: those still silencing at ``at`` (now) or later, or with
    ``include_past`` every one."""
    start = None if include_past else (utcnow() if at is None else to_utc(at))
    with store.transaction(readonly=True) as tx:
        return tx.list_silences(start=start, limit=limit)


def get_silence(store: Store, silence_id: int) -> Silence:
    with store.transaction(readonly=True) as tx:
        return tx.get_silence(silence_id)


def sensor_silences(
    store: Store, sensor_name: str, start: TimeLike, end: TimeLike
) -> list[SilenceWindow]:
    """Every silenced span of a sensor within ``[start, end)`` (its own silences, its
    assets' and everyone's), clipped to it, in time order: what a chart shades."""
    a, b = to_utc(start), to_utc(end)
    with store.transaction(readonly=True) as tx:
        sensor = tx.get_sensor(sensor_name)
        found = tx.list_silences(targets=tx.silence_targets(sensor.id), start=a, end=b)
    spans = [SilenceWindow(s, lo, hi) for s in found for lo, hi in s.windows(a, b)]
    return sorted(spans, key=lambda w: (w.start, w.silence.id))


def silenced_sensors(store: Store, at: TimeLike | None = None) -> tuple[bool, set[str]]:
    """Which sensors a silence covers at ``at`` (now): ``(everything, names)``; ``everything``
    True when a silence of scope all is on (then every sensor is silenced)."""
    t = utcnow() if at is None else to_utc(at)
    with store.transaction(readonly=True) as tx:
        found = [s for s in tx.list_silences(start=t, end=t + pd.Timedelta("1us")) if s.covers(t)]
        names = {s.target for s in found if s.scope == "sensor" and s.target}
        for s in found:
            asset = tx.find_asset(s.target) if s.scope == "asset" and s.target else None
            if asset is not None:  # (an asset removed since silences nothing)
                names.update(x.name for x in asset.sensors)
    return any(s.scope == "all" for s in found), names
