"""Assets: create and change groups of sensors, and read their sensors aligned on one grid.

The rules live here, each change in one transaction with its audit entry (``asset.create``,
``asset.add_sensors``, ``asset.remove_sensors``, ``asset.train``, ``asset.set_step``,
``asset.remove``, as ``actor``): a valid name, known sensors, never an
asset without a sensor, a positive step, a training period that ends after it starts. The
aligned read is one bounded read of every member (``plantcast.detect.alignment`` does the
aligning); it reads nothing after the last grid time, so no row can see ahead of itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

from plantcast.core.errors import InputError, NotFound, PlantcastError, Refused
from plantcast.core.timeutil import DurationLike, TimeLike, format_duration, parse_duration, to_utc
from plantcast.core.types import NAME_PATTERN, Asset, Sensor
from plantcast.services.audit import SYSTEM, changed, jsonable
from plantcast.store import Store, Transaction

_NAME = re.compile(NAME_PATTERN)
# An aligned frame is read whole: this many grid rows at most (ask for a shorter window).
MAX_GRID_ROWS = 500_000
TABLES = ("assets", "asset_sensors", "asset_state")


def require_tables(store: Store) -> None:
    """Say what to run when the database predates assets (its tables are made by ``init``,
    which ``migrate`` runs too), instead of a driver's "no such table"."""
    missing = store.missing_tables(TABLES)
    if missing:
        raise PlantcastError(
            f"the database {store.url} has no {' or '.join(missing)} table yet (made by an "
            "older plantcast); run `plantcast migrate` (or `plantcast init`)"
        )


def check_name(name: str) -> str:
    """An asset name as sensor names are: letters, digits, ``_ . : -``, at most 200."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"{name!r} is not a valid asset name: start with a letter or digit, then letters, "
            "digits, '_', '.', ':' or '-' (at most 200 characters)",
            field="name",
        )
    return name


def _step(step: DurationLike | None) -> pd.Timedelta | None:
    if step is None:
        return None
    value = parse_duration(step, field="step")
    if value <= pd.Timedelta(0):
        raise InputError("the step must be more than 0", field="step")
    return value


def _names(sensors: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(sensors))
    if not names:
        raise InputError("name at least one sensor", field="sensor")
    return names


def _sensors(tx: Transaction, names: list[str]) -> list[Sensor]:
    """The named sensors, in the order named; every unknown one is named in the error."""
    found = tx.sensors_by_name(names)
    missing = [n for n in names if n not in found]
    if missing:
        which = ", ".join(repr(n) for n in missing)
        raise NotFound(f"no sensor named {which}" if len(missing) == 1 else f"no sensors {which}")
    return [found[n][0] for n in names]


def _state(asset: Asset) -> dict:
    """What the audit log keeps of an asset."""
    return (
        jsonable(
            {
                "sensors": list(asset.sensor_names),
                "step": None if asset.step is None else format_duration(asset.step),
                "train_from": asset.train_from,
                "train_to": asset.train_to,
            }
        )
        or {}
    )


def _audit(tx: Transaction, actor: str, verb: str, before: Asset | None, after: Asset | None):
    name = (after or before).name  # type: ignore[union-attr]  # one of them is always given
    was = None if before is None else _state(before)
    now = None if after is None else _state(after)
    if was is not None and now is not None:
        was, now = changed(was, now)
    tx.audit(actor, f"asset.{verb}", f"asset:{name}", was, now)


def create_asset(
    store: Store,
    name: str,
    sensors: Sequence[str],
    step: DurationLike | None = None,
    *,
    description: str = "",
    actor: str = SYSTEM,
) -> Asset:
    """A new asset of these existing sensors (in this order). ``step``: the grid its sensors
    are aligned on ('1min', a Timedelta); None follows the slowest sensor's interval.

    Raises InputError (bad name, no sensor, bad step), NotFound (an unknown sensor, all named)
    or Refused (an asset of that name exists)."""
    with store.transaction() as tx:
        asset = create_asset_in(tx, name, sensors, step, description=description)
        _audit(tx, actor, "create", None, asset)
        return asset


def create_asset_in(
    tx: Transaction,
    name: str,
    sensors: Sequence[str],
    step: DurationLike | None = None,
    *,
    description: str = "",
) -> Asset:
    """:func:`create_asset` inside the caller's transaction (an import that makes the sensors
    and their asset together: all or nothing)."""
    check_name(name)
    names, grid_step = _names(sensors), _step(step)
    members = _sensors(tx, names)
    return tx.insert_asset(name, [s.id for s in members], step=grid_step, description=description)


def get_asset(store: Store, name: str) -> Asset:
    return store.get_asset(name)


def list_assets(store: Store) -> list[Asset]:
    return store.list_assets()


def add_sensors(store: Store, name: str, sensors: Sequence[str], *, actor: str = SYSTEM) -> Asset:
    """Add sensors after the asset's others; one already in it is refused, by name."""
    with store.transaction() as tx:
        before = tx.get_asset(name)
        asset = add_sensors_in(tx, name, sensors)
        _audit(tx, actor, "add_sensors", before, asset)
        return asset


def add_sensors_in(tx: Transaction, name: str, sensors: Sequence[str]) -> Asset:
    """:func:`add_sensors` inside the caller's transaction (an import that extends an asset
    with the sensors it makes: all or nothing)."""
    names = _names(sensors)
    asset = tx.get_asset(name)
    already = [n for n in names if n in asset.sensor_names]
    if already:
        which = ", ".join(repr(n) for n in already)
        raise Refused(f"asset {name!r} already has {which}")
    tx.add_asset_sensors(asset.id, [s.id for s in _sensors(tx, names)])
    return tx.get_asset(name)


def remove_sensors(
    store: Store, name: str, sensors: Sequence[str], *, actor: str = SYSTEM
) -> Asset:
    """Take sensors out of an asset (the sensors and their readings stay). A sensor that is not
    a member is named; taking out the last one is refused: remove the asset instead."""
    names = _names(sensors)
    with store.transaction() as tx:
        asset = tx.get_asset(name)
        absent = [n for n in names if n not in asset.sensor_names]
        if absent:
            which = ", ".join(repr(n) for n in absent)
            raise NotFound(
                f"asset {name!r} has no sensor {which}; its sensors: "
                f"{', '.join(asset.sensor_names)}"
            )
        if len(set(names)) == len(asset.sensors):
            raise Refused(
                f"removing {', '.join(names)} would leave asset {name!r} without a sensor; "
                "remove the asset instead"
            )
        tx.remove_asset_sensors(asset.id, [s.id for s in asset.sensors if s.name in names])
        after = tx.get_asset(name)
        _audit(tx, actor, "remove_sensors", asset, after)
        return after


def remove_asset(store: Store, name: str, *, actor: str = SYSTEM) -> Asset:
    """Remove an asset (its sensors and their readings stay); returns what it was."""
    with store.transaction() as tx:
        asset = tx.get_asset(name)
        if tx.has_alerts_of_asset(asset.id):
            raise Refused(
                f"asset {name!r} has alerts, which name it; it is kept "
                f"(see `plantcast alerts --asset {name}`)"
            )
        tx.forget_asset_state(asset.id)
        tx.forget_asset_fits(asset.id)
        tx.delete_asset(asset.id)
        _audit(tx, actor, "remove", asset, None)
    return asset


def set_training(
    store: Store, name: str, start: TimeLike | None, end: TimeLike | None, *, actor: str = SYSTEM
) -> Asset:
    """Pin the asset's known-good training period ``start <= t < end``; None and None clear
    it (detectors then learn from a causal window of their own)."""
    if (start is None) != (end is None):
        raise InputError("give both ends of the training period, or neither to clear it")
    lo = None if start is None else to_utc(start)
    hi = None if end is None else to_utc(end)
    if lo is not None and hi is not None and hi <= lo:
        raise InputError(f"the training period must end after it starts ({lo} to {hi})", field="to")
    with store.transaction() as tx:
        asset = tx.get_asset(name)
        tx.set_asset_training(asset.id, lo, hi)
        after = tx.get_asset(name)
        _audit(tx, actor, "train", asset, after)
        return after


def set_step(store: Store, name: str, step: DurationLike | None, *, actor: str = SYSTEM) -> Asset:
    """Set the asset's grid step; None follows the slowest sensor's interval again."""
    grid_step = _step(step)
    with store.transaction() as tx:
        asset = tx.get_asset(name)
        tx.set_asset_step(asset.id, grid_step)
        after = tx.get_asset(name)
        _audit(tx, actor, "set_step", asset, after)
        return after


def aligned_readings(
    store: Store,
    asset: Asset | str,
    start: TimeLike,
    end: TimeLike,
    *,
    max_age: DurationLike | None = None,
) -> pd.DataFrame:
    """The asset's sensors on its grid over ``start <= t < end``: columns are sensor names
    (in the asset's order), the index the grid times, NaN where a sensor's last reading at or
    before ``t`` is older than ``max_age`` (default: two of that sensor's intervals).

    One bounded read of all members, from the first grid time less the longest fill to the
    last grid time: nothing after a row's time can reach it."""
    # Here, not at the top: importing plantcast.detect loads the detectors (scikit-learn), and
    # the asset commands that only list or change assets start without them.
    from plantcast.detect.alignment import align, default_max_age, grid

    if isinstance(asset, str):
        asset = store.get_asset(asset)
    lo, hi = to_utc(start), to_utc(end)
    if hi <= lo:
        raise InputError(f"the window must end after it starts ({lo} to {hi})", field="end")
    step = asset.grid_step
    if (hi - lo) / step > MAX_GRID_ROWS:
        raise InputError(
            f"{(hi - lo) / step:,.0f} grid rows of {step}: more than the limit of "
            f"{MAX_GRID_ROWS:,}; ask for a shorter window",
            field="start",
        )
    times = grid(lo, hi, step)
    fixed = None if max_age is None else parse_duration(max_age, field="max_age")
    ages = {
        s.name: fixed if fixed is not None else default_max_age(s.interval) for s in asset.sensors
    }
    if len(times) == 0:
        return align({s.name: pd.Series(dtype=float) for s in asset.sensors}, times, ages)
    lookback = max(ages.values())
    with store.transaction(readonly=True) as tx:
        found = tx.read_series_many(
            [s.id for s in asset.sensors],
            times[0] - lookback,
            times[-1] + pd.Timedelta(microseconds=1),  # the last grid time itself, no later
        )
    return align({s.name: found[s.id] for s in asset.sensors}, times, ages)
