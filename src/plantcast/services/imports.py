"""Import use cases that reach past the readings: a wide file whose sensors become an asset.

The asset is made, or extended by the sensors it lacks, inside the import's own transaction
(``before_commit``): a failed import leaves no asset, and no asset change, behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantcast.core.types import Asset
from plantcast.ingest.csv_wide import WideResult, import_wide
from plantcast.services.assets import add_sensors_in, check_name, create_asset_in, require_tables
from plantcast.store import Store, Transaction


def import_wide_file(
    store: Store, path: Path, *, asset: str | None = None, **options: Any
) -> tuple[WideResult, Asset | None]:
    """:func:`plantcast.ingest.csv_wide.import_wide` (``options`` are its own) and, with
    ``asset``, that asset made of the imported sensors (in column order) or extended by
    those it lacks; returns the import's result and the asset as committed."""
    if asset is None:
        return import_wide(store, path, **options), None
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

    result = import_wide(store, path, before_commit=join, **options)
    return result, joined[-1]
