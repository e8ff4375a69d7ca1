"""Limit alarms as a SCADA raises them, and a forecast's crossing of a limit: pure, no store.

A limit alarm goes through the episode layer (:mod:`plantcast.detect.episodes`): a reading at
or beyond the limit enters the alarm (high, high-high: at or above; low, low-low: at or
below) and it clears only once a reading is back inside by the ``deadband`` (hysteresis), so
a value dithering around a limit is one alarm, not one a reading. Each level is its own alarm,
of kind ``limit:<level>`` (``limit:high_high`` …). Scoring resumes where the last pass ended:
a level whose alarm is still open enters the new readings already in alarm.

:func:`forecast_crossing` finds when a forecast's mean first reaches a limit within its
horizon, with the forecast's band there: an early warning (``forecast_limit``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.episodes import find_episodes, hysteresis

LEVELS = ("low_low", "low", "high", "high_high")
HIGH_SIDE = ("high", "high_high")
PREFIX = "limit:"
FORECAST_KIND = "forecast_limit"
BAND_COLUMNS = ("lower_80", "upper_80", "lower_95", "upper_95")


def kind_of(level: str) -> str:
    """The alert kind (its ``detector``) of a level's alarm: ``limit:high`` …"""
    return f"{PREFIX}{level}"


def level_of(kind: str) -> str | None:
    """The level of a limit alarm's kind; None for any other kind of alert."""
    return kind[len(PREFIX) :] if kind.startswith(PREFIX) else None


def excess(values: np.ndarray, level_name: str, level: float) -> np.ndarray:
    """How far beyond the limit each value is (negative: inside)."""
    if level_name in HIGH_SIDE:
        return np.asarray(values - level, dtype=np.float64)
    return np.asarray(level - values, dtype=np.float64)


def alarm_flags(
    values: np.ndarray, level_name: str, level: float, deadband: float, *, ongoing: bool
) -> np.ndarray:
    """Which readings are in alarm: entered at the limit, left once back inside it by the
    deadband; ``ongoing``: the alarm was on before the first of them."""
    score = excess(values, level_name, level)
    if ongoing:  # a reading exactly at the limit ahead of them carries the alarm in
        score = np.r_[0.0, score]
    flags = hysteresis(score, 0.0, -abs(deadband))
    return flags[1:] if ongoing else flags


@dataclass(frozen=True)
class LevelEpisodes:
    """One level's alarms over the scored readings: ``episodes`` (``find_episodes``'s frame,
    score = the peak excess beyond the limit), and whether the first continues an alarm open
    before them (``continues``)."""

    level: str
    value: float
    episodes: pd.DataFrame
    continues: bool


def limit_episodes(
    series: pd.Series,
    levels: Mapping[str, float],
    deadband: float,
    ongoing: Collection[str] = (),
) -> dict[str, LevelEpisodes]:
    """Each set level's alarm episodes over ``series`` (readings not scored before, in time
    order); ``ongoing``: the levels whose alarm was open at the last reading scored before."""
    out: dict[str, LevelEpisodes] = {}
    values = series.to_numpy(dtype=np.float64)
    for name, level in levels.items():
        flags = alarm_flags(values, name, level, deadband, ongoing=name in ongoing)
        frame = pd.DataFrame(
            {
                "flag": flags,
                "score": excess(values, name, level),
                "value": values,
                "expected": np.full(len(values), float(level)),
            },
            index=series.index,
        )
        eps = find_episodes(frame)
        continues = bool(name in ongoing and len(flags) and flags[0])
        out[name] = LevelEpisodes(name, float(level), eps, continues)
    return out


def limit_alert_changes(
    open_alerts: Mapping[str, Mapping[str, Any]],
    found: Mapping[str, LevelEpisodes],
    *,
    last: pd.Timestamp,
    scored_before: pd.Timestamp | None,
    deadband: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """How a pass's episodes change the alarms: ``(to_update, to_insert)`` as
    ``merge_episodes`` gives them. ``open_alerts``: each level's open alarm (``id``,
    ``score``) by level; ``last``: the last reading scored now; ``scored_before``: the last
    scored by the pass before (where an open alarm that cleared at once ends). An episode
    reaching ``last`` is ongoing (``ends_at`` None)."""
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for name, lev in found.items():
        eps = list(lev.episodes.itertuples(index=False))
        alert = open_alerts.get(name)
        if alert is not None:
            if lev.continues and eps:
                first = eps.pop(0)
                change: dict[str, Any] = {"id": alert["id"]}
                if first.end < last:
                    change["ends_at"] = first.end
                if float(first.peak_score) > float(alert["score"]):
                    change |= {"score": float(first.peak_score), "value": float(first.value)}
                if len(change) > 1:
                    updates.append(change)
            else:
                updates.append({"id": alert["id"], "ends_at": scored_before or last})
        for ep in eps:
            inserts.append(
                {
                    "detector": kind_of(name),
                    "ts": ep.start,
                    "ends_at": None if ep.end >= last else ep.end,
                    "score": float(ep.peak_score),
                    "value": float(ep.value),
                    "expected": lev.value,
                    "details": {"limit": name, "level": lev.value, "deadband": float(deadband)},
                }
            )
    return updates, inserts


@dataclass(frozen=True)
class Crossing:
    """When a forecast's mean first reaches a limit, with its band there."""

    level: str
    value: float  # the limit
    at: pd.Timestamp  # the first forecast time at or beyond it
    mean: float  # the forecast there
    band: dict[str, float]  # lower_80 … upper_95 there (those the forecast has)

    def details(self, origin: pd.Timestamp) -> dict[str, Any]:
        """An early warning's ``details`` (JSON): the limit, when it is crossed and how far
        ahead of ``origin`` (the last reading), the forecast and its band there."""
        return {
            "limit": self.level,
            "level": self.value,
            "crosses_at": self.at.isoformat(),
            "in_hours": round((self.at - origin) / pd.Timedelta("1h"), 3),
            "mean": self.mean,
            "band": self.band,
        }


def forecast_crossing(
    frame: pd.DataFrame, levels: Mapping[str, float], skip: Collection[str] = ()
) -> Crossing | None:
    """The earliest crossing of any level (but ``skip``: those already in alarm) by the
    forecast's ``mean``; None when it stays inside every limit over its horizon."""
    if frame.empty or "mean" not in frame:
        return None
    mean = frame["mean"].to_numpy(dtype=np.float64)
    best: Crossing | None = None
    for name, level in levels.items():
        if name in skip:
            continue
        beyond = np.flatnonzero(excess(mean, name, level) >= 0)
        if not len(beyond):
            continue
        i = int(beyond[0])
        at = pd.Timestamp(frame.index[i])
        if best is None or at < best.at:
            band = {c: float(frame[c].iloc[i]) for c in BAND_COLUMNS if c in frame}
            best = Crossing(name, float(level), at, float(mean[i]), band)
    return best
