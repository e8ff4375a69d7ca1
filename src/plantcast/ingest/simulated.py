"""Simulated sensors: create them from presets and compute their readings with stored events."""

from __future__ import annotations

import pandas as pd

from plantcast.core.errors import Refused
from plantcast.core.types import Event, Sensor, Source
from plantcast.signals import EventSpec, SignalModel, apply_events
from plantcast.signals.model import model_from_dict, model_to_dict
from plantcast.signals.presets import PRESETS, model_for
from plantcast.store import Store


def ensure_simulated_sensor(
    store: Store, name: str, interval: pd.Timedelta, model: SignalModel | None = None
) -> Sensor:
    """Create the sensor from its preset (or ``model``) if missing; refuse a non-simulated one."""
    preset = PRESETS.get(name)
    sensor = store.ensure_sensor(
        name,
        source=Source.SIMULATED,
        interval=interval,
        unit=preset.unit if preset else "",
        description=preset.description if preset else "Simulated sensor.",
        params={
            **model_to_dict(model or model_for(name)),
            "periods": list(preset.periods if preset else ("24h",)),
        },
    )
    if sensor.source is not Source.SIMULATED:
        raise Refused(
            f"sensor {name!r} holds {sensor.source.value} data; only simulated sensors "
            "can be backfilled or streamed"
        )
    return sensor


def stored_model(store: Store, sensor: Sensor) -> SignalModel:
    params = store.sensor_params(sensor.id)
    return model_from_dict(params) if params else model_for(sensor.name)


def as_specs(events: list[Event]) -> list[EventSpec]:
    return [EventSpec(e.kind, e.starts_at, e.ends_at, e.magnitude) for e in events]


def simulate(
    model: SignalModel,
    index: pd.DatetimeIndex,
    events: list[Event],
    previous_value: float | None = None,
) -> pd.Series:
    """Readings of a simulated sensor at ``index``, with the stored events applied."""
    values = model.values(index)
    idx, vals = apply_events(
        index, values, as_specs(events), seed=model.seed, previous_value=previous_value
    )
    return pd.Series(vals, index=idx.rename("ts"), name="value")
