"""The chart's read model: bounded in size whatever the history, smoothing as the demo's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.ingest.backfill import backfill
from plantcast.services.views import sensor_window

STEP = pd.Timedelta("30min")


def test_raw_window_with_rolling_mean_of_k_readings(store):
    backfill(store, "reservoir_pressure", days=7, interval=STEP, end="2026-01-08")
    sensor = store.get_sensor("reservoir_pressure")
    view = sensor_window(store, sensor, pd.Timedelta("3d"), smoothing=5)
    assert not view.downsampled and len(view.buckets) == 144
    raw = view.buckets["mean"]
    expected = raw.rolling(5, min_periods=1).mean()  # the demo's rolling mean over readings
    np.testing.assert_allclose(view.smoothed.to_numpy(), expected.to_numpy())
    assert view.latest[0] == pd.Timestamp("2026-01-08", tz="UTC")


def test_long_window_is_downsampled_in_sql_and_keeps_spikes(store):
    backfill(store, "reservoir_pressure", days=200, interval=STEP, end="2026-08-01")
    sensor = store.get_sensor("reservoir_pressure")
    spike_at = pd.Timestamp("2026-05-01 10:30", tz="UTC")
    store.write_readings(sensor.id, pd.Series([500.0], index=pd.DatetimeIndex([spike_at])))
    view = sensor_window(store, sensor, pd.Timedelta("180d"), max_points=2000)
    assert view.downsampled
    assert len(view.buckets) <= 2000
    assert view.buckets["max"].max() == 500.0  # min/max kept: the spike stays visible
    assert view.buckets["count"].sum() == store.count_readings(sensor.id, view.start, view.end)


def test_empty_sensor_view(store):
    from plantcast.core.types import Source

    sensor = store.ensure_sensor("idle", source=Source.IMPORTED, interval=STEP)
    view = sensor_window(store, sensor, pd.Timedelta("1d"))
    assert view.empty and view.latest is None
