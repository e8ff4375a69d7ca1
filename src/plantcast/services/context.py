"""Opening the configured store, with messages that say what to do when it is not ready."""

from __future__ import annotations

from plantcast.core.config import load_settings
from plantcast.core.errors import PlantcastError
from plantcast.store import Store


def open_store(database_url: str | None = None, *, init: bool = False) -> Store:
    """Open the store named by ``database_url`` or the environment; optionally create tables."""
    settings = load_settings(database_url=database_url)
    store = Store.open(settings.database_url)
    if init:
        store.init()
    elif not store.is_initialized():
        store.close()
        raise PlantcastError(
            f"the database {store.url} has no plantcast tables yet; run `plantcast init` "
            "(or `plantcast demo`)"
        )
    return store


DEFAULT_PERIODS = ("24h",)


def sensor_periods(store: Store, sensor_id: int) -> tuple[str, ...]:
    """The seasonal periods configured for a sensor (its models' default), else 24h."""
    periods = store.sensor_params(sensor_id).get("periods")
    return tuple(periods) if periods else DEFAULT_PERIODS
