"""One refresh of the live page: a bounded window, cached forecasts, events and alerts.

Everything a refresh needs is read here with bounded queries, so its cost does not grow with
the length of history; forecasts come from :class:`~plantcast.services.forecasting.Forecasting`
(refitted only when a reading is new).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, Refused
from plantcast.core.types import Alert, AlertStatus, Event, Sensor
from plantcast.services.forecasting import (
    Forecasting,
    ForecastResult,
    ForecastSpec,
    event_exclusions,
)
from plantcast.services.views import WindowView, sensor_window
from plantcast.store import Store


@dataclass(frozen=True)
class LiveRequest:
    sensor: Sensor
    window: pd.Timedelta
    smoothing: int = 5
    models: tuple[str, ...] = ("fourier_linear", "svr", "random_forest")
    spec: ForecastSpec = field(default_factory=ForecastSpec)
    fit_on_smoothed: bool = False


@dataclass
class LiveFrame:
    view: WindowView
    forecasts: dict[str, ForecastResult] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # model -> why it has no forecast
    events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    open_alerts: int = 0
    # the newest open ones (at most OPEN_SHOWN), read with open_alerts: the panel lists these,
    # so the count and the list never come from two reads an alert could fall between
    open_list: list[Alert] = field(default_factory=list)


OPEN_SHOWN = 50


def refresh(store: Store, forecasting: Forecasting, req: LiveRequest) -> LiveFrame:
    """Everything one refresh of one sensor shows."""
    view = sensor_window(store, req.sensor, req.window, smoothing=req.smoothing)
    frame = LiveFrame(view)
    if view.empty:
        return frame
    spec = req.spec
    if req.fit_on_smoothed and req.smoothing > 1:
        spec = replace(spec, smooth=req.smoothing)
    history = store.read_tail(req.sensor.id, spec.history_points()) if req.models else None
    # injected events do not calibrate the bands (a +20 shift would widen them tenfold)
    exclude = event_exclusions(store, req.sensor.id, history, spec.horizon) if req.models else ()
    for name in req.models:
        try:
            frame.forecasts[name] = forecasting.forecast_series(
                req.sensor.name, history, replace(spec, model=name), exclude=exclude
            )
        except (NotEnoughData, InputError, Refused) as exc:
            frame.problems[name] = str(exc)
    frame.events = store.events_overlapping(req.sensor.id, view.start, view.end)
    frame.alerts = store.list_alerts(sensor_id=req.sensor.id, start=view.start, limit=500)
    frame.open_list = store.list_alerts(
        sensor_id=req.sensor.id, status=AlertStatus.OPEN, limit=OPEN_SHOWN + 1
    )
    frame.open_alerts = len(frame.open_list)
    if len(frame.open_list) > OPEN_SHOWN:  # more than are shown: count them all
        frame.open_alerts = store.count_open_alerts(req.sensor.id)
        frame.open_list = frame.open_list[:OPEN_SHOWN]
    return frame
