"""Labeled scenarios: seeded, events of every kind, separated, magnitudes in units of σ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import EventKind
from plantcast.signals import SignalModel
from plantcast.signals.scenarios import generate_scenario


def test_same_seed_same_scenario_and_different_seed_differs():
    a, b, c = generate_scenario(3), generate_scenario(3), generate_scenario(4)
    pd.testing.assert_series_equal(a.series, b.series)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert not a.labels["starts_at"].equals(c.labels["starts_at"])


def test_every_kind_once_separated_and_after_warmup():
    sc = generate_scenario(0, days=28)
    lab = sc.labels.sort_values("starts_at")
    assert sorted(lab["kind"]) == sorted(k.value for k in EventKind)
    assert (
        lab["starts_at"].iloc[1:].to_numpy() - lab["ends_at"].iloc[:-1].to_numpy()
        >= pd.Timedelta("12h")
    ).all()
    assert lab["starts_at"].min() >= sc.series.index[0] + pd.Timedelta("7d")
    assert sc.series.index.tz is not None and str(sc.series.index.tz) == "UTC"
    assert len(sc.train) == 7 * 48


def test_magnitudes_in_sigma_and_effects_applied():
    model = SignalModel(noise=1.0, noise_kind="gaussian", seed=5)
    sc = generate_scenario(1, model=model, magnitudes_sigma=(4, 6))
    sized = sc.labels.dropna(subset=["magnitude_sigma"])
    assert sized["magnitude_sigma"].abs().between(4, 6).all()
    np.testing.assert_allclose(sized["magnitude"], sized["magnitude_sigma"] * model.noise_std)
    spike = sc.labels.set_index("kind").loc["spike"]
    ts = spike["starts_at"]
    assert sc.series[ts] - sc.clean[ts] == pytest.approx(spike["magnitude"])
    drop = sc.labels.set_index("kind").loc["dropout"]
    missing = sc.clean.index[
        (sc.clean.index >= drop["starts_at"]) & (sc.clean.index < drop["ends_at"])
    ]
    assert len(missing) >= 4 and not missing.isin(sc.series.index).any()
    assert len(sc.series) == len(sc.clean) - len(missing)


def test_too_many_events_for_the_days_is_a_clear_error():
    with pytest.raises(ValueError, match="do not fit"):
        generate_scenario(0, days=9, events_per_kind=3)
