"""Import use cases that reach past the readings: the audit entry of an import, a wide file
whose sensors become an asset, a sensor made for imported readings.

The audit entry (``import``), and the asset made or extended by the sensors it lacks, are
written inside the import's own transaction (``before_commit``): a failed import leaves no
entry, no asset and no asset change behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from plantcast.core.errors import Refused
from plantcast.core.timeutil import format_duration
from plantcast.core.types import Asset, Sensor, Source
from plantcast.ingest.csv_import import BeforeCommit, CsvSpec, ImportResult, import_csv
from plantcast.ingest.csv_wide import WideResult, import_wide
from plantcast.services.assets import add_sensors_in, check_name, create_asset_in, require_tables
from plantcast.services.audit import SYSTEM, jsonable
from plantcast.store import Store, Transaction


def audited(actor: str, source: str, then: BeforeCommit | None = None) -> BeforeCommit:
    """A ``before_commit`` that writes the import's one audit entry (after ``then``)."""

    def hook(tx: Transaction, sensors: list[str]) -> None:
        if then is not None:
            then(tx, sensors)
        after = {"file": source, "sensors": list(sensors)}
        tx.audit(actor, "import", f"import:{source}"[:200], None, after)

    return hook


def import_file(
    store: Store,
    spec: CsvSpec,
    sensor: str,
    *,
    actor: str = SYSTEM,
    source: str | None = None,
    **options: Any,
) -> ImportResult:
    """:func:`plantcast.ingest.csv_import.import_csv` with its audit entry (``source`` names
    what was imported: the file's name by default)."""
    hook = audited(actor, source or Path(spec.path).name)
    return import_csv(store, spec, sensor, before_commit=hook, **options)


def create_sensor(
    store: Store,
    name: str,
    interval: pd.Timedelta,
    *,
    unit: str = "",
    description: str = "",
    actor: str = SYSTEM,
) -> Sensor:
    """A new sensor for imported readings; one of that name is refused."""
    with store.transaction() as tx:
        if tx.sensors_by_name([name]):
            raise Refused(f"sensor {name!r} exists")
        sensor = tx.ensure_sensor(
            name, source=Source.IMPORTED, interval=interval, unit=unit, description=description
        )
        made = {"interval": format_duration(interval), "unit": unit, "description": description}
        tx.audit(actor, "sensor.create", f"sensor:{name}", None, jsonable(made))
    return sensor


def import_wide_file(
    store: Store,
    path: Path,
    *,
    asset: str | None = None,
    actor: str = SYSTEM,
    **options: Any,
) -> tuple[WideResult, Asset | None]:
    """:func:`plantcast.ingest.csv_wide.import_wide` (``options`` are its own) and, with
    ``asset``, that asset made of the imported sensors (in column order) or extended by
    those it lacks; returns the import's result and the asset as committed. One audit entry
    (``import``) records it, the asset change included."""
    source = Path(path).name
    if asset is None:
        return import_wide(store, path, before_commit=audited(actor, source), **options), None
    check_name(asset)  # before reading a byte
    require_tables(store)
    joined: list[Asset] = []

    def join(tx: Transaction, sensors: list[str]) -> None:
        current = tx.find_asset(asset)
        if current is None:
            joined.append(create_asset_in(tx, asset, sensors))
            return
        new = [n for n in sensors if n not in current.sensor_names]
        joined.append(add_sensors_in(tx, asset, new) if new else current)

    result = import_wide(store, path, before_commit=audited(actor, source, join), **options)
    return result, joined[-1]
