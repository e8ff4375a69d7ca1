"""The pattern-change detectors registered in ``plantcast detect``: each alerts on the change it
is for, stays quiet on a clean series, and scores (or says why it cannot) a sensor without a
season and a 1 s sensor with 15 minutes of history. Through the CLI and the service on SQLite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.services.detection import (
    COOLDOWN,
    DETECTOR_CLASSES,
    detect_sensor,
    make_detectors,
)
from plantcast.services.detector_training import CLEANED, CLEANED_ALONE
from plantcast.store import Store

START = pd.Timestamp("2025-03-01", tz="UTC")
STEP = pd.Timedelta("30min")
AT = START + pd.Timedelta(days=28)  # four weeks of normal history, then the change
PATTERNS = ("drift", "scale_change", "profile_change", "discord")


def _series(kind: str, seed: int = 0) -> pd.Series:
    """35 days of a daily sine (amplitude 10) with Gaussian noise (σ 1) at 30 min, and from
    ``AT`` the change ``kind`` names ("clean": none)."""
    idx = pd.date_range(START, periods=35 * 48, freq=STEP)
    t = np.arange(len(idx)) / 48
    season = 10 * np.sin(2 * np.pi * t)
    noise = np.random.default_rng(seed).normal(0, 1, len(idx))
    value = 50 + season + noise
    two_days = (idx >= AT) & (idx < AT + pd.Timedelta(days=2))
    if kind == "drift":  # 6σ over three days, each reading within the noise of the last
        value = value + 6 * np.clip((idx - AT) / pd.Timedelta(days=3), 0, 1)
    elif kind == "scale_change":  # the noise five times larger, the cycle as it was
        value = np.where(two_days, 50 + season + 5 * noise, value)
    elif kind == "profile_change":  # the daily cycle inverted, level and noise unchanged
        value = np.where(two_days, 50 - season + noise, value)
    elif kind == "discord":  # a square wave three times a day: a shape never seen
        value = np.where(two_days, 50 + 10 * np.sign(np.sin(6 * np.pi * t)) + noise, value)
    return pd.Series(value, index=idx)


def _load(url: str, name: str, series: pd.Series, step: pd.Timedelta) -> None:
    with Store.open(url) as store:
        store.init()
        sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=step).id
        store.write_readings(sid, series)


def _alerts(url: str, name: str) -> list:
    with Store.open(url) as store:
        return store.list_alerts(sensor_id=store.get_sensor(name).id)


def test_each_pattern_detector_is_registered_with_an_episode_policy():
    for name in PATTERNS:
        assert name in DETECTOR_CLASSES and COOLDOWN[name] > pd.Timedelta(0)
        assert name in CLEANED_ALONE and name not in CLEANED


@pytest.mark.parametrize("kind", PATTERNS)
def test_detect_alerts_on_the_planted_change_and_not_on_a_clean_twin(sqlite_url, kind):
    _load(sqlite_url, "changed", _series(kind), STEP)
    _load(sqlite_url, "clean", _series("clean"), STEP)
    args = ["detect", "--database-url", sqlite_url, "--periods", "24h", "--detector", kind]
    for sensor in ("changed", "clean"):
        result = CliRunner().invoke(cli, [*args, "--sensor", sensor])
        assert result.exit_code == 0, result.output
        assert f"{sensor}: scored {35 * 48:,} readings" in result.output
    found = _alerts(sqlite_url, "changed")
    assert {a.detector for a in found} == {kind}
    assert any(AT - pd.Timedelta("1h") <= a.ts <= AT + pd.Timedelta(days=3) for a in found)
    assert all(a.ts >= AT - pd.Timedelta("1h") for a in found)  # nothing before the change
    assert _alerts(sqlite_url, "clean") == []


def test_unknown_detector_is_refused_with_the_known_names(sqlite_url):
    _load(sqlite_url, "s", _series("clean"), STEP)
    result = CliRunner().invoke(cli, ["detect", "--database-url", sqlite_url, "--detector", "nope"])
    assert result.exit_code != 0
    assert "nope" in result.output and "profile_change" in result.output


def test_explain_says_which_window_and_season_each_uses(sqlite_url):
    _load(sqlite_url, "s", _series("clean"), STEP)
    args = ["detect", "--database-url", sqlite_url, "--periods", "24h", "--explain"]
    for name in PATTERNS:
        args += ["--detector", name]
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("season 24h") == len(PATTERNS)  # the day is 48 readings
    assert "residual_z" not in result.output  # only the detectors asked for


def test_a_sensor_without_a_season_is_scored_by_its_autocorrelation(sqlite_url):
    """No periods: the detectors take their window from the autocorrelation, and the
    drift still shows."""
    idx = pd.date_range(START, periods=35 * 48, freq=STEP)
    rng = np.random.default_rng(3)
    ar = np.zeros(len(idx))
    for i in range(1, len(idx)):
        ar[i] = 0.8 * ar[i - 1] + rng.normal()
    drift = 8 * np.clip((idx - AT) / pd.Timedelta(days=3), 0, 1)
    _load(sqlite_url, "plain", pd.Series(20 + ar + drift, index=idx), STEP)
    with Store.open(sqlite_url) as store:
        sensor = store.get_sensor("plain")
        result = detect_sensor(store, "plain", periods=(), detectors=PATTERNS)
        for det in make_detectors(sensor, (), PATTERNS).values():
            det.fit(store.read_series(sensor.id, START, AT))
            source = det.explain().get("window_source") or det.explain()["span_source"]
            assert "autocorrelation" in source
    assert result.scored == 35 * 48 and result.skipped == {}
    found = _alerts(sqlite_url, "plain")
    assert any(a.detector == "drift" and a.ts >= AT for a in found)


def test_a_1s_sensor_with_15_minutes_of_history_is_scored_or_says_why(sqlite_url):
    idx = pd.date_range(START, periods=900, freq="1s")
    t = np.arange(900)
    value = np.sin(2 * np.pi * t / 60) + np.random.default_rng(5).normal(0, 0.1, 900)
    _load(sqlite_url, "fast", pd.Series(value, index=idx), pd.Timedelta("1s"))
    with Store.open(sqlite_url) as store:
        result = detect_sensor(store, "fast", periods=(), detectors=PATTERNS)
    assert result.scored == 900
    for name, why in result.skipped.items():  # a detector that cannot fit says how much
        assert name in PATTERNS and "needs at least" in why
    assert len(result.skipped) < len(PATTERNS)  # the others scored it
