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


# The periods of a sensor with none stored, or whose detection found no season. Models such
# as seasonal_naive, ets and the dashboard's periods box need one; on a series without a cycle
# a 24h season costs little (Fourier models fit near-zero amplitudes, seasonal naive is the
# value a day earlier) and keeps every caller working as before detection existed.
DEFAULT_PERIODS = ("24h",)


def sensor_periods(store: Store, sensor_id: int) -> tuple[str, ...]:
    """A sensor's seasonal periods, its models' default: configured (simulated sensors) or
    detected from its readings (``plantcast.services.seasons``); 24h when there are none."""
    periods = store.sensor_params(sensor_id).get("periods")
    return tuple(periods) if periods else DEFAULT_PERIODS
