"""Per-sensor alarm limits (low-low, low, high, high-high, a deadband): set, show and clear
them, each change with its audit entry. The alarms they raise: ``plantcast.services.limit_alerts``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

from plantcast.core.errors import InputError, NotFound
from plantcast.services.audit import changed
from plantcast.store import Store
from plantcast.store.limits import LEVELS, Limits

__all__ = ["LEVELS", "Limits", "clear_limits", "sensor_limits", "set_limits"]
UNSET = object()


def check_limits(limits: Limits) -> Limits:
    """Refuse limits a SCADA would: not numbers, out of order, a negative deadband."""
    for key in (*LEVELS, "deadband"):
        v = getattr(limits, key)
        if v is not None and (not isinstance(v, int | float) or not math.isfinite(v)):
            raise InputError(f"the {key} limit must be a finite number, not {v!r}", field=key)
    if limits.deadband < 0:
        raise InputError("the deadband must not be negative", field="deadband")
    levels = limits.levels()
    order = [k for k in LEVELS if k in levels]
    for lo, hi in itertools.pairwise(order):
        strict = lo in ("low_low", "low") and hi in ("high", "high_high")
        if levels[lo] > levels[hi] or (strict and levels[lo] == levels[hi]):
            raise InputError(f"{lo} ({levels[lo]:g}) must be below {hi} ({levels[hi]:g})", field=lo)
    return limits


def set_limits(
    store: Store,
    sensor_name: str,
    *,
    author: str,
    levels: dict[str, float | None] | None = None,
    deadband: float | None = None,
) -> Limits:
    """Set some of a sensor's limits (``levels``: ``{level: value}``, a None value unsets
    that level); the others keep their values."""
    levels = dict(levels or {})
    unknown = [k for k in levels if k not in LEVELS]
    if unknown:
        raise InputError(
            f"unknown limit(s) {', '.join(unknown)}: choose from {', '.join(LEVELS)}",
            field="levels",
        )
    with store.transaction() as tx:
        sensor = tx.get_sensor(sensor_name)
        before = tx.get_limits(sensor.id)
        base = before or Limits(sensor.id)
        after = replace(base, **levels)  # type: ignore[arg-type]  # levels: LEVELS only
        if deadband is not None:
            after = replace(after, deadband=float(deadband))
        check_limits(after)
        if not after.levels():
            raise InputError(
                "set at least one limit (low_low, low, high or high_high)", field="levels"
            )
        stored = tx.put_limits(after, author)
        if before is None:  # the first limits of the sensor: what was set
            old, new = None, {k: v for k, v in stored.fields().items() if v is not None}
        else:
            old, new = changed(base.fields(), stored.fields())
        tx.audit(author, "limit.set", f"sensor:{sensor.name}", old, new)
    return stored


def clear_limits(store: Store, sensor_name: str, *, author: str) -> Limits:
    """Remove every limit of the sensor (its limit alarms stop being raised)."""
    with store.transaction() as tx:
        sensor = tx.get_sensor(sensor_name)
        before = tx.get_limits(sensor.id)
        if before is None:
            raise NotFound(f"sensor {sensor.name!r} has no limits")
        tx.delete_limits(sensor.id)
        tx.audit(author, "limit.clear", f"sensor:{sensor.name}", before.fields(), None)
    return before


def sensor_limits(store: Store, sensor_name: str) -> Limits | None:
    """The sensor's limits (None: none set): what a chart draws as lines."""
    with store.transaction(readonly=True) as tx:
        return tx.get_limits(tx.get_sensor(sensor_name).id)


def all_limits(store: Store) -> dict[str, Limits]:
    """Every sensor's limits, by sensor name."""
    with store.transaction(readonly=True) as tx:
        found = tx.limits_many()
    names = {s.id: s.name for s in store.list_sensors()} if found else {}
    return {names[i]: v for i, v in found.items() if i in names}
