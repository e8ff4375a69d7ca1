"""The sidebar: every control of the reference demo and more, read into one request object."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from plantcast.core.errors import InputError
from plantcast.core.timeutil import parse_duration
from plantcast.core.types import Sensor
from plantcast.dashboard import state
from plantcast.forecast import available_models
from plantcast.services.forecasting import ForecastSpec
from plantcast.services.live import LiveRequest
from plantcast.services.seasons import sensor_periods_now

WINDOWS = {
    "6 hours": "6h",
    "1 day": "1d",
    "3 days": "3d",
    "7 days": "7d",
    "28 days": "28d",
    "90 days": "90d",
    "1 year": "365d",
}
HORIZONS = ["6h", "12h", "1d", "2d", "3d", "7d"]
MODEL_LABELS = {
    "fourier_linear": "Fourier regression",
    "svr": "SVR (RBF)",
    "random_forest": "Random Forest",
    "seasonal_naive": "Seasonal naive",
    "mstl": "MSTL",
    "ets": "ETS",
    "auto": "auto (best by backtest)",
}
DEMO_MODELS = ["fourier_linear", "svr", "random_forest"]


@dataclass(frozen=True)
class Controls:
    request: LiveRequest
    level: int | None  # interval band to draw


def _periods(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())  # none: no season
    for p in parts:
        if parse_duration(p, field="seasonal periods") <= pd.Timedelta(0):
            raise InputError(f"period {p!r} must be positive", field="seasonal periods")
    return parts


def _sensor_changed() -> None:
    """A new sensor brings its own seasonal periods into the periods box."""
    st.session_state.pop("periods", None)


def sidebar(sensors: list[Sensor]) -> Controls | None:
    """Draw the controls; None when an input is invalid (the message is shown in place)."""
    sb = st.sidebar
    sb.header("plantcast")
    names = [s.name for s in sensors]
    default = names.index("reservoir_pressure") if "reservoir_pressure" in names else 0
    if st.session_state.get("sensor") in names:
        default = 0  # chosen already (or by ?sensor=): that value stands, without a warning
    name = sb.selectbox("Sensor", names, index=default, key="sensor", on_change=_sensor_changed)
    sensor = next(s for s in sensors if s.name == name)
    window = sb.selectbox("Time window", list(WINDOWS), index=2, key="window")
    smoothing = sb.slider("Smoothing window (readings)", 1, 96, 5, key="smoothing")
    sb.subheader("Forecast")
    horizon = sb.select_slider("Forecast horizon", HORIZONS, value="1d", key="horizon")
    periods_text = sb.text_input(
        "Seasonal period(s)",
        ", ".join(sensor_periods_now(state.store(), sensor)),
        key="periods",
        help="Durations, comma-separated: 24h, 7d, 12h…; empty: models fit without a season",
    )
    harmonics = sb.slider("Fourier harmonics", 1, 10, 3, key="harmonics")
    models = sb.multiselect(
        "Models",
        available_models(),
        default=DEMO_MODELS,
        key="models",
        format_func=lambda m: MODEL_LABELS.get(m, m),
    )
    level = sb.radio("Interval", ["none", "80 %", "95 %"], index=1, key="level", horizontal=True)
    fit_on = sb.radio(
        "Fit on",
        ["raw", "smoothed"],
        index=0,
        key="fit_on",
        horizontal=True,
        help="Raw by default: smoothing lags the signal and roughly doubles "
        "the error in backtests.",
    )
    try:
        periods = _periods(periods_text)
    except InputError as exc:
        sb.error(str(exc))
        return None
    steps = max(1, int(pd.Timedelta(horizon) / sensor.interval))
    spec = ForecastSpec(
        horizon=steps, periods=periods, harmonics=harmonics, intervals=level != "none"
    )
    request = LiveRequest(
        sensor=sensor,
        window=pd.Timedelta(WINDOWS[window]),
        smoothing=smoothing,
        models=tuple(models),
        spec=spec,
        fit_on_smoothed=fit_on == "smoothed",
    )
    return Controls(request, None if level == "none" else int(level.split()[0]))
