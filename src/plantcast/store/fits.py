"""Fitted detector state: per sensor, the detectors of its last refit, stored as bytes.

The store keeps the state opaque (``plantcast.services.detector_fits`` makes and reads it).
It is derived data: emptying or dropping ``detector_fits`` loses nothing but time, since the
next detect pass refits every sensor it finds without a usable state and stores it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, select

from plantcast.core.timeutil import to_utc
from plantcast.store.engine import upsert
from plantcast.store.schema import asset_fits, detector_fits

BATCH = 500  # sensor ids per IN (...) list


@dataclass(frozen=True)
class StoredFit:
    """One sensor's row of ``detector_fits``; ``state`` is what the service layer pickled."""

    sensor_id: int
    detectors: tuple[str, ...]
    periods: tuple[str, ...]
    trained_until: pd.Timestamp
    fitted_at: pd.Timestamp
    version: int
    state: bytes


def _names(text: str) -> tuple[str, ...]:
    return tuple(n for n in text.split(",") if n)


def _to_fit(row: Row[Any]) -> StoredFit:
    return StoredFit(
        sensor_id=row.sensor_id,
        detectors=_names(row.detectors),
        periods=_names(row.periods),
        trained_until=row.trained_until,
        fitted_at=row.fitted_at,
        version=row.version,
        state=bytes(row.state),
    )


def get_fit(conn: Connection, sensor_id: int) -> StoredFit | None:
    """The sensor's stored fit, or None when it has none yet."""
    row = conn.execute(select(detector_fits).where(detector_fits.c.sensor_id == sensor_id)).first()
    return None if row is None else _to_fit(row)


def fits_many(conn: Connection, sensor_ids: Iterable[int]) -> dict[int, StoredFit]:
    """:func:`get_fit` for many sensors, one statement per ``BATCH`` of ids."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, StoredFit] = {}
    for lo in range(0, len(ids), BATCH):
        q = select(detector_fits).where(detector_fits.c.sensor_id.in_(ids[lo : lo + BATCH]))
        for row in conn.execute(q):
            out[row.sensor_id] = _to_fit(row)
    return out


def fit_stamps_many(conn: Connection, sensor_ids: Iterable[int]) -> dict[int, pd.Timestamp]:
    """When each of these sensors' fits was stored (``fitted_at``), without the state: a
    caller that keeps fits in memory loads only those stored since."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, pd.Timestamp] = {}
    cols = (detector_fits.c.sensor_id, detector_fits.c.fitted_at)
    for lo in range(0, len(ids), BATCH):
        q = select(*cols).where(detector_fits.c.sensor_id.in_(ids[lo : lo + BATCH]))
        for sid, at in conn.execute(q):
            out[int(sid)] = at
    return out


def put_fits(conn: Connection, fits: Iterable[StoredFit]) -> None:
    """Insert or replace these sensors' fits: one upsert statement run for all the rows."""
    rows = [
        {
            "sensor_id": f.sensor_id,
            "detectors": ",".join(f.detectors),
            "periods": ",".join(f.periods),
            "trained_until": to_utc(f.trained_until),
            "fitted_at": to_utc(f.fitted_at),
            "version": f.version,
            "state": f.state,
        }
        for f in {f.sensor_id: f for f in fits}.values()  # the last of a sensor wins
    ]
    upsert(conn, detector_fits, rows, ("sensor_id",))


def put_fit(conn: Connection, fit: StoredFit) -> None:
    """Insert or replace one sensor's fit."""
    put_fits(conn, [fit])


# -- assets' fitted detectors (asset_fits) ---------------------------------------------------
@dataclass(frozen=True)
class StoredAssetFit:
    """One row of ``asset_fits``: an asset detector fitted on ``[train_from, train_to)``."""

    asset_id: int
    detector: str
    sensors: tuple[str, ...]
    train_from: pd.Timestamp
    train_to: pd.Timestamp
    fitted_at: pd.Timestamp
    version: int
    state: bytes


def asset_fits_many(
    conn: Connection, asset_ids: Iterable[int]
) -> dict[tuple[int, str], StoredAssetFit]:
    """The stored fits of these assets: ``{(asset_id, detector): fit}``."""
    ids = [int(i) for i in dict.fromkeys(asset_ids)]
    out: dict[tuple[int, str], StoredAssetFit] = {}
    for lo in range(0, len(ids), BATCH):
        q = select(asset_fits).where(asset_fits.c.asset_id.in_(ids[lo : lo + BATCH]))
        for r in conn.execute(q):
            out[(r.asset_id, r.detector)] = StoredAssetFit(
                r.asset_id,
                r.detector,
                _names(r.sensors),
                r.train_from,
                r.train_to,
                r.fitted_at,
                r.version,
                bytes(r.state),
            )
    return out


def put_asset_fits(conn: Connection, fits: Iterable[StoredAssetFit]) -> None:
    """Insert or replace these assets' fits (one upsert statement for all)."""
    rows = [
        {
            "asset_id": f.asset_id,
            "detector": f.detector,
            "sensors": ",".join(f.sensors),
            "train_from": to_utc(f.train_from),
            "train_to": to_utc(f.train_to),
            "fitted_at": to_utc(f.fitted_at),
            "version": f.version,
            "state": f.state,
        }
        for f in {(f.asset_id, f.detector): f for f in fits}.values()
    ]
    upsert(conn, asset_fits, rows, ("asset_id", "detector"))


def forget_asset_fits(conn: Connection, asset_id: int) -> None:
    """An asset's stored fits (removed with the asset)."""
    conn.execute(asset_fits.delete().where(asset_fits.c.asset_id == asset_id))
