"""The detector template: input validation, NaN policy, fit-before-detect, forecaster injection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import InputError
from plantcast.detect import NotFitted, ResidualZDetector, StuckDetector, validate_series
from plantcast.signals import SignalModel, generate_readings


@pytest.fixture
def series():
    return generate_readings(SignalModel(), "2024-01-01", periods=400, interval="30min")


def test_unsorted_index_is_refused(series):
    with pytest.raises(InputError, match="not sorted"):
        StuckDetector(min_run=3).detect(series.iloc[::-1])


def test_naive_index_is_refused(series):
    with pytest.raises(InputError, match="naive"):
        StuckDetector(min_run=3).detect(series.tz_localize(None))


def test_non_utc_duplicates_and_non_float_are_refused(series):
    with pytest.raises(InputError, match="not UTC"):
        validate_series(series.tz_convert("Europe/Paris"))
    with pytest.raises(InputError, match="duplicate"):
        validate_series(pd.concat([series.iloc[:3], series.iloc[2:4]]))
    with pytest.raises(InputError, match="floats"):
        validate_series(series.astype(str))
    with pytest.raises(InputError, match="floats"):
        validate_series(series.round().astype(int))
    with pytest.raises(InputError, match="Series"):
        validate_series(series.to_numpy())
    with pytest.raises(InputError, match="infinite"):
        validate_series(series.replace(series.iloc[5], np.inf))


def test_detect_before_fit_is_refused(series):
    with pytest.raises(NotFitted, match=r"call \.fit"):
        ResidualZDetector().detect(series)
    with pytest.raises(NotFitted):
        StuckDetector().detect(series)


def test_nan_is_a_missing_reading(series):
    holed = series.copy()
    holed.iloc[10:20] = np.nan
    frame = StuckDetector(min_run=3).detect(holed)
    assert len(frame) == len(series) - 10 and not frame["value"].isna().any()


def test_refit_forgets_and_injected_forecaster_is_used(series):
    class Mean:
        def fit(self, s):
            self.level = float(s.mean())
            return self

        def predict_at(self, index):
            return np.full(len(index), self.level)

    det = ResidualZDetector(Mean()).fit(series)
    frame = det.detect(series)
    assert np.allclose(frame["expected"], series.mean())
    det.fit(series + 50)
    assert np.allclose(det.detect(series)["expected"], series.mean() + 50)


def test_real_forecaster_by_name(series):
    det = ResidualZDetector("fourier_linear").fit(series.iloc[:300])
    frame = det.detect(series)
    expected = SignalModel().expected(series.index)
    assert np.abs(frame["expected"] - expected).max() < 0.5
