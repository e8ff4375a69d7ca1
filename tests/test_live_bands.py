"""The live page's bands leave injected events out of their calibration, like the CLI's."""

from __future__ import annotations

import pandas as pd

from plantcast.ingest.backfill import backfill
from plantcast.ingest.stream import Streamer
from plantcast.services.forecasting import Forecasting, ForecastSpec
from plantcast.services.injection import inject
from plantcast.services.live import LiveRequest, refresh

SENSOR = "reservoir_pressure"
STEP = pd.Timedelta("30min")
END = pd.Timestamp("2026-03-01", tz="UTC")


def _width(frame, level: int) -> float:
    """Mean band width over the last six steps (where shifted residuals would widen it)."""
    result = frame.forecasts["fourier_linear"].frame.iloc[-6:]
    return float((result[f"upper_{level}"] - result[f"lower_{level}"]).mean())


def test_live_bands_after_a_level_shift_stay_within_1_5x(store):
    backfill(store, SENSOR, days=14, interval=STEP, end=END)
    sensor = store.get_sensor(SENSOR)
    req = LiveRequest(sensor, pd.Timedelta("3d"), models=("fourier_linear",), spec=ForecastSpec())
    before = refresh(store, Forecasting(), req)
    inject(store, SENSOR, "level_shift", magnitude=20.0)
    Streamer(store, [SENSOR], tick=0, step=STEP, count=24).run()  # 12 h at the new level
    after = refresh(store, Forecasting(), req)  # a fresh page calibrates anew
    assert not after.problems
    for level in (80, 95):
        assert _width(after, level) <= 1.5 * _width(before, level)
