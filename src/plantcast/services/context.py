"""Opening the configured store, with messages that say what to do when it is not ready."""

from __future__ import annotations

from plantcast.core.dburl import database_url as resolve_url
from plantcast.core.errors import PlantcastError
from plantcast.store import Store


def open_store(database_url: str | None = None, *, init: bool = False) -> Store:
    """Open the store named by ``database_url`` or the environment; optionally create tables."""
    # The URL alone, without loading every setting: pydantic stays out of quick commands.
    store = Store.open(resolve_url(database_url))
    if init:
        store.init()
    elif not store.is_initialized():
        store.close()
        raise PlantcastError(
            f"the database {store.url} has no plantcast tables yet; run `plantcast init` "
            "(or `plantcast demo`)"
        )
    return store


def sensor_periods(store: Store, sensor_id: int) -> tuple[str, ...]:
    """A sensor's seasonal periods, its models' default: configured (simulated sensors) or
    detected from its readings (``plantcast.services.seasons``); ``()`` when none were found
    or detection has not run: every model then fits without a season (no assumed 24h)."""
    return tuple(store.sensor_params(sensor_id).get("periods") or ())
