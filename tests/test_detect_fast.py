"""The incremental pass's quick scoring finds exactly what the full score frame does.

A pass scores a sensor's new readings with its stored fit through ``Detector.episodes_of``:
the window validated once, no score frame built when nothing is flagged, the linear
forecaster's expected values without scikit-learn's input checks. Each detector's episodes
there must equal, bit for bit, those grouped from its whole score frame (``detect``) on the
same window, with planted faults and without; on a window read back from SQLite and
PostgreSQL with the fit the first pass stored. The rolling medians and means taken through
pandas' own routines equal its public ones, and many sensors read at once (one binary row per
sensor on PostgreSQL) equal each read alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import Sensor, Source
from plantcast.detect.base import validate_series
from plantcast.detect.episodes import find_episodes
from plantcast.detect.rolling import (
    ewm_mean,
    rolling_mean,
    rolling_median,
    time_median_before,
)
from plantcast.forecast.regression import RegressionForecaster, linear_predict
from plantcast.services.detection import (
    DETECTOR_CLASSES,
    DetectOptions,
    context_span,
    detect_sensor,
    make_detectors,
    plan_sensor,
    read_chunk,
    score_chunk,
)
from plantcast.services.detector_fits import from_stored
from plantcast.signals import SignalModel, generate_readings

STEP = pd.Timedelta("30min")
START = pd.Timestamp("2026-01-01", tz="UTC")
DAY = 48
FAULTS = ("clean", "spike", "shift", "stuck", "gap", "noise")


def _series(kind: str, seed: int = 1, days: int = 9) -> pd.Series:
    """The demo signal, and in its last day the fault ``kind`` names."""
    s = generate_readings(SignalModel(seed=seed), START, periods=days * DAY, interval=STEP)
    v, at = s.to_numpy().copy(), len(s) - DAY + 5
    if kind == "spike":
        v[at] += 40
    elif kind == "shift":
        v[at:] += 15
    elif kind == "stuck":
        v[at : at + 12] = v[at]
    elif kind == "noise":
        v[at : at + 10] += np.random.default_rng(seed).normal(0, 8, 10)
    s = pd.Series(v, index=s.index)
    return s.drop(s.index[at : at + 6]) if kind == "gap" else s


def _reference(det, window: pd.Series) -> pd.DataFrame:
    """The episodes grouped from the detector's whole score frame."""
    return find_episodes(
        det.detect(window),
        max_gap=det.episode_gap,
        merge_gap=det.policy.gap(),
        min_duration=det.policy.shortest(),
    )


def _same(quick: pd.DataFrame, full: pd.DataFrame) -> None:
    assert list(quick.columns) == list(full.columns)
    pd.testing.assert_frame_equal(
        quick.reset_index(drop=True), full.reset_index(drop=True), check_exact=True
    )


def test_the_linear_forecasters_expected_values_are_scikit_learns_bit_for_bit():
    rng = np.random.default_rng(0)
    cases = [("30min", ("24h",), False), ("1s", (), False), ("1min", ("1h",), True)]
    for freq, periods, trend in cases * 4:
        n = int(rng.integers(200, 3000))
        idx = pd.date_range(START, periods=n, freq=freq)
        y = pd.Series(rng.normal(size=n).cumsum() + np.sin(np.arange(n) / 7), index=idx)
        model = RegressionForecaster(periods=periods, trend=trend).fit(y)
        ahead = pd.date_range(idx[-1], periods=40, freq="17min")
        x = model._features(idx[::3].append(ahead))
        quick = linear_predict(model.pipeline_, x)
        assert quick is not None
        assert np.array_equal(quick, model.pipeline_.predict(x))


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("name", sorted(DETECTOR_CLASSES))
def test_each_detector_finds_the_same_episodes_without_the_frame(name, kind):
    series = _series(kind)
    cut = series.index[-DAY]
    train, window = series[series.index < cut], series[series.index >= cut - 7 * DAY * STEP]
    sensor = Sensor(1, "s", "", "", Source.IMPORTED, STEP, START)
    det = make_detectors(sensor, ("24h",), (name,))[name].fit(train)
    _same(det.episodes_of(validate_series(window)), _reference(det, window))
    _same(det.episodes(window), _reference(det, window))


@pytest.mark.parametrize("kind", ("spike", "shift", "stuck", "gap"))
def test_an_incremental_pass_scores_as_the_full_frame_on_the_stored_fit(store, kind):
    """Read back from the store with the fit the first pass stored: what the pass found per
    detector is what each detector's whole frame holds, and the pass alerts on the fault."""
    names = tuple(DETECTOR_CLASSES)
    series = _series(kind)
    sid = store.ensure_sensor("s", source=Source.IMPORTED, interval=STEP).id
    store.update_sensor_params(sid, {"periods": ["24h"]})
    new = series.index >= series.index[-DAY + 1]
    store.write_readings(sid, series[~new])
    detect_sensor(store, "s", since=series.index[~new][-DAY], detectors=names)
    store.write_readings(sid, series[new])
    plan = plan_sensor(store, "s", detectors=names)
    assert len(plan.chunks) == 1 and plan.fit is not None
    (a, b), options = plan.chunks[0], DetectOptions()
    chunk = read_chunk(store, plan, plan.fit, a, b, options)
    score = score_chunk(plan, chunk, a, b, options, plan.fit)
    assert score is not None and not score.refitted  # scored with the stored fit
    with store.transaction(readonly=True) as tx:
        fit = from_stored(tx.get_fit(sid))
    window = chunk.iloc[max(0, chunk.index.searchsorted(a - context_span(plan.sensor)) - 1) :]
    for name, det in fit.detectors.items():
        full = _reference(det, window)
        full = full[full["end"] >= a - pd.Timedelta("2h")]
        _same(score.found[name], full)
    assert any(len(eps) for eps in score.found.values())  # not vacuous
    result = detect_sensor(store, "s", detectors=names)
    assert result.scored == int(new.sum()) and store.list_alerts(sensor_id=sid)


def test_the_rolling_medians_means_and_ewma_are_pandas_bit_for_bit():
    rng = np.random.default_rng(1)
    for case in range(400):
        n, window = int(rng.integers(0, 700)), int(rng.integers(1, 400))
        least = int(rng.integers(0, window + 1))
        x = rng.normal(size=n) * 10.0 ** int(rng.integers(-5, 6))
        if case % 4 == 0 and n:
            x[rng.integers(0, n, size=max(1, n // 10))] = np.nan
        if case % 7 == 0 and n:
            x[rng.integers(0, n)] = np.inf
        if case % 5 == 0:
            x = np.round(x)  # ties: medians of even counts
        roll = pd.Series(x, dtype=float).rolling(window, min_periods=least)
        assert np.array_equal(rolling_median(x, window, least), roll.median(), equal_nan=True)
        assert np.array_equal(rolling_mean(x, window, least), roll.mean(), equal_nan=True)
        alpha = float(rng.uniform(0.001, 1.0))
        ewm = pd.Series(x, dtype=float).ewm(alpha=alpha, adjust=False).mean()
        assert np.array_equal(ewm_mean(x, alpha), ewm, equal_nan=True)
        idx = pd.date_range(START, periods=n, freq=("30min", "1s")[case % 2]).as_unit(
            ("ns", "us")[case % 3 == 0]
        )
        if n > 10 and case % 2:
            idx = idx.delete(rng.integers(0, n, size=n // 5))
            x = x[: len(idx)]
        span = pd.Timedelta(("6h", "1d", "90s")[case % 3])
        timed = pd.Series(x, index=idx).rolling(span, closed="left", min_periods=1).median()
        assert np.array_equal(time_median_before(x, idx, span), timed, equal_nan=True)
        most = int(rng.integers(1, 120))  # at most the last ``most`` of the window's readings
        capped = _median_of_last(x, idx, span, most)
        assert np.array_equal(time_median_before(x, idx, span, most), capped, equal_nan=True)


def _median_of_last(x: np.ndarray, idx: pd.DatetimeIndex, span, most: int) -> np.ndarray:
    """By definition: the median of the finite values among the last ``most`` readings in the
    ``span`` of time before each reading (NaN where there is none)."""
    values = np.where(np.isinf(x), np.nan, np.asarray(x, dtype=float))
    ts = idx.asi8
    width = pd.Timedelta(span).as_unit(idx.unit)._value
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        lo = max(int(np.searchsorted(ts, ts[i] - width, side="left")), i - most)
        window = values[lo:i]
        window = window[np.isfinite(window)]
        if len(window):
            out[i] = np.median(window)
    return out


def test_many_sensors_are_read_as_each_alone(store):
    """``read_series_many`` (on PostgreSQL one binary row per sensor) reads what
    ``read_series`` does, a sensor with nothing in the window included."""
    ids = []
    for i, kind in enumerate(("clean", "gap", "spike")):
        sid = store.ensure_sensor(f"r{i}", source=Source.IMPORTED, interval=STEP).id
        store.write_readings(sid, _series(kind, seed=i, days=3) + 1e-9 * i)
        ids.append(sid)
    empty = store.ensure_sensor("none", source=Source.IMPORTED, interval=STEP).id
    lo, hi = START + pd.Timedelta("1d") + pd.Timedelta("1us"), START + pd.Timedelta("2d")
    with store.transaction(readonly=True) as tx:
        many = tx.read_series_many([*ids, empty], lo, hi)
    assert set(many) == {*ids, empty} and many[empty].empty
    for sid in ids:
        alone = store.read_series(sid, lo, hi)
        assert len(alone) > 40
        pd.testing.assert_series_equal(many[sid], alone, check_exact=True, check_freq=False)
