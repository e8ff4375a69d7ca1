"""Real recordings as backgrounds: load the vendored CSVs, estimate their noise, inject events.

The CSVs (``tests/data``, see its README) are ``ts,value`` in UTC. :func:`real_scenario` takes a
random window of a real series and injects labelled events sized in units of the series' own
noise σ, keeping the same window without them as the clean twin (for false alerts).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration
from plantcast.core.types import EventKind
from plantcast.signals.scenarios import Scenario, inject_labeled

RECORDINGS = {
    "taylor_electricity_demand": "taylor_electricity_demand.csv",
    "seattle_temperature": "seattle_temperature.csv",
    "sf_temperature": "sf_temperature.csv",
    "water_flow": "water_flow.csv",
}
# Recordings without known anomalies: the backgrounds for injected events and clean stretches.
CLEAN_RECORDINGS = ("taylor_electricity_demand", "seattle_temperature", "sf_temperature")
# Seasonal periods of each recording (electricity demand has a weekly cycle as well).
PERIODS = {
    "taylor_electricity_demand": ("24h", "7d"),
    "seattle_temperature": ("24h",),
    "sf_temperature": ("24h",),
    "water_flow": ("24h",),
}
LABEL_COLUMNS = ["kind", "starts_at", "ends_at"]

# The real anomalies of water_flow.csv, labelled by eye from a plot of the file and checked
# against the readings (the source says: three low-flow periods and one pumping peak). ``ends_at``
# is exclusive: the first reading back at the normal level (~100-105 l/s).
#  * 03-24 07:00: flow falls from 102 to a floor of 24.3 l/s from 10:00, ramps back 21:00-00:00;
#  * 03-29 06:00: falls to 24.3 l/s at 07:00, ramps back 14:00-19:00;
#  * 04-03 03:00: a two-reading pumping peak, 100.5 -> 102.7 -> 109.7 l/s, back to 101 at 05:00;
#  * 04-27 13:00: falls to 24.3 l/s from 16:00, ramps back 02:00-04:00 on 04-28.
WATER_FLOW_ANOMALIES = (
    ("low_flow", "2022-03-24T07:00Z", "2022-03-25T01:00Z"),
    ("low_flow", "2022-03-29T06:00Z", "2022-03-29T20:00Z"),
    ("pumping_peak", "2022-04-03T03:00Z", "2022-04-03T05:00Z"),
    ("low_flow", "2022-04-27T13:00Z", "2022-04-28T05:00Z"),
)


def load_recording(path: str | Path) -> pd.Series:
    """A vendored ``ts,value`` CSV as a float series on a sorted, unique UTC index."""
    frame = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True, format="ISO8601"), name="ts")
    series = pd.Series(frame["value"].to_numpy(dtype=np.float64), index=index, name="value")
    series = series[~series.index.duplicated(keep="last")].sort_index()
    return series


def load_recordings(data_dir: str | Path, names: Iterable[str] = tuple(RECORDINGS)) -> dict:
    """``{name: series}`` for the named recordings found in ``data_dir``."""
    return {n: load_recording(Path(data_dir) / RECORDINGS[n]) for n in names}


def real_labels(name: str, series: pd.Series | None = None) -> pd.DataFrame:
    """Known real anomalies of a recording (kind, starts_at, ends_at); empty when none known.

    For ``water_flow`` these are :data:`WATER_FLOW_ANOMALIES` and, given the ``series``, its
    real gaps of more than two readings as ``dropout`` events (missing data is an anomaly too).
    """
    rows = []
    if name == "water_flow":
        rows = [(k, pd.Timestamp(a), pd.Timestamp(b)) for k, a, b in WATER_FLOW_ANOMALIES]
        if series is not None:
            rows += [("dropout", a, b) for a, b in gaps(series)]
    labels = pd.DataFrame(rows, columns=LABEL_COLUMNS)
    for col in ("starts_at", "ends_at"):
        labels[col] = pd.to_datetime(labels[col], utc=True)
    return labels.sort_values("starts_at", ignore_index=True)


def gaps(series: pd.Series, k: float = 2.0) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Missing stretches: (first missing slot, next reading) where a step exceeds ``k`` steps."""
    ns = series.index.asi8
    if len(ns) < 3:
        return []
    step = int(np.median(np.diff(ns)))
    at = np.flatnonzero(np.diff(ns) > k * step)
    return [(series.index[i] + pd.Timedelta(step, "ns"), series.index[i + 1]) for i in at]


def noise_sigma(series: pd.Series, periods: Iterable[str] = ("24h",)) -> float:
    """Robust noise σ: 1.4826·MAD of the residuals of a classical seasonal decomposition.

    Trend: a centred rolling mean over the longest of ``periods`` that the series spans at
    least three times; season: the median of the detrended values per slot of that period;
    the MAD of what is left is scaled up by √(k/(k−1)) for the k cycles the slot medians were
    fitted on. This is the variation a seasonal model cannot explain, what a detector watching
    the sensor has to live with. (MAD of first differences / √2 would mostly measure the slope
    of the daily cycle on smooth series such as the temperatures: 0.5-0.7 °F there against
    0.2-0.5 °F here, and half the weekday/weekend swing on electricity demand.)
    """
    idx = series.index
    span = idx[-1] - idx[0] if len(idx) else pd.Timedelta(0)
    usable = [parse_duration(p, field="period") for p in periods]
    usable = [p for p in usable if span >= 3 * p]
    values = series.astype(np.float64)
    if not usable:  # too short for a season: the level alone
        resid = (values - values.median()).to_numpy()
        return float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    period = max(usable)
    trend = values.rolling(period, center=True, min_periods=1).mean()
    detrended = values - trend
    slot = (idx.asi8 - idx.asi8[0]) % period.value
    resid = (detrended - detrended.groupby(slot).transform("median")).to_numpy()
    k = span / period
    mad = float(np.median(np.abs(resid - np.median(resid))))
    return float(1.4826 * mad * np.sqrt(k / (k - 1.0)))


def real_scenario(
    background: pd.Series,
    seed: int,
    *,
    days: float = 35,
    warmup: str | pd.Timedelta = "14d",
    guard: str | pd.Timedelta = "12h",
    kinds: Iterable[EventKind | str] = tuple(EventKind),
    events_per_kind: int = 1,
    magnitudes_sigma: tuple[float, float] = (3.0, 10.0),
    periods: Iterable[str] = ("24h",),
) -> Scenario:
    """A labelled scenario on a random ``days`` window of a real series (seeded).

    σ is :func:`noise_sigma` of the clean window (seasonal-fit residuals, robust); event sizes
    are ``magnitudes_sigma`` times σ, placed after ``warmup`` (the detectors' training part) and
    ``guard`` apart, as in :func:`plantcast.signals.scenarios.generate_scenario`. ``clean`` is
    the same window without the events; ``model`` is None.
    """
    rng = np.random.default_rng(seed)
    idx = background.index
    length = pd.Timedelta(days=days)
    if idx[-1] - idx[0] < length:
        raise ValueError(
            f"the background covers {idx[-1] - idx[0]}, less than the {days} days asked"
        )
    latest = int(np.searchsorted(idx.asi8, (idx[-1] - length).value, side="right")) - 1
    lo = int(rng.integers(0, latest + 1))
    clean = background[(idx >= idx[lo]) & (idx < idx[lo] + length)].astype(np.float64)
    clean = clean.rename("value")
    step = pd.Timedelta(int(np.median(np.diff(clean.index.asi8))), unit="ns")
    warm, gap = parse_duration(warmup, field="warmup"), parse_duration(guard, field="guard")
    first = int(np.searchsorted(clean.index.asi8, (clean.index[0] + warm).value))
    sigma = noise_sigma(clean, periods)
    series, labels, events = inject_labeled(
        clean,
        rng,
        sigma,
        seed=seed,
        kinds=kinds,
        events_per_kind=events_per_kind,
        magnitudes_sigma=magnitudes_sigma,
        first=first,
        guard=int(np.ceil(gap / step)),
    )
    return Scenario(series, clean, labels, events, None, step, warm)
