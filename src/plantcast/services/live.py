"""One refresh of the live page: a bounded window, cached forecasts, events and alerts.

Everything a refresh needs is read here with bounded queries, so its cost does not grow with
the length of history; forecasts come from :class:`~plantcast.services.forecasting.Forecasting`
(refitted only when a reading is new). A forecast the scheduled refresh stored
(``plantcast.services.forecast_store``) is read and shown too, never fitted here: a model the
page asks for that the stored forecast was made with is taken from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, NotFound, Refused
from plantcast.core.types import Alert, AlertStatus, Event, Sensor
from plantcast.services.forecast_store import StoredView, stored_forecast
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
    stored: StoredView | None = None  # the sensor's stored forecast (its age, stale or not)


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
    frame.stored = _stored(store, req.sensor.name)
    if frame.stored is not None:  # shown whatever models are asked; that model is not refitted
        frame.forecasts[frame.stored.row.model] = stored_result(frame.stored)
    models = [m for m in req.models if m not in frame.forecasts]
    history = store.read_tail(req.sensor.id, spec.history_points()) if models else None
    # injected events do not calibrate the bands (a +20 shift would widen them tenfold)
    exclude = event_exclusions(store, req.sensor.id, history, spec.horizon) if models else ()
    for name in models:
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


def _stored(store: Store, sensor: str) -> StoredView | None:
    try:
        return stored_forecast(store, sensor)
    except NotFound:
        return None


def stored_result(view: StoredView) -> ForecastResult:
    """A stored forecast in the shape of a fitted one (what the chart draws)."""
    row, choice = view.row, view.choice
    scores = choice.scores if choice else None
    return ForecastResult(
        row.sensor, row.model, row.chosen, view.frame(), row.fitted_on, scores=scores
    )
