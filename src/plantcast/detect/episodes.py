"""Episodes: flagged readings grouped so that one ongoing anomaly is one episode.

Every detector goes through this one layer: :func:`hysteresis` turns a score into flags (an
episode is entered above ``enter`` and left only once the score falls below ``exit``), and
:func:`find_episodes` groups the flags, bridging quiet stretches shorter than a merge gap and
dropping episodes shorter than a minimum duration. :class:`EpisodePolicy` holds a detector's
settings for both, and for the alert layer above it (cooldown, self-resolution).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from plantcast.core.timeutil import parse_duration, to_epoch_ns

# After an alert ends, a new episode of the same sensor starting within this joins it, whichever
# detector raised either (each detector's own cooldown, if longer, still applies): one
# incident, not a string of alerts while the sensor settles. A day, so a fault of a daily-cycle
# sensor that shows again at the same phase the next day (a cold spell, a wider daily swing, a
# job's new schedule: normal hours between its showings) stays the one incident it is. On the
# labelled replay of real failures (four NAB recordings, issue 17) the alerts 12-24 h after
# another were all such repeats; 12 h -> 24 h took its false alerts 22 -> 16, windows 9/9.
INCIDENT_COOLDOWN = pd.Timedelta("24h")


@dataclass(frozen=True)
class EpisodePolicy:
    """How a detector's flags become episodes and its episodes alerts.

    * ``exit_ratio``: hysteresis; an episode ends once the score drops below
      ``exit_ratio × threshold`` (1.0: no hysteresis).
    * ``merge_gap``: flagged stretches closer than this in time are one episode.
    * ``min_duration``: shorter episodes are dropped (an episode still running at the end of
      the scored data is kept: it may grow).
    * ``cooldown``: a new episode starting within this of an alert's end extends that alert
      rather than opening another.
    """

    exit_ratio: float = 1.0
    merge_gap: str | pd.Timedelta = "0s"
    min_duration: str | pd.Timedelta = "0s"
    cooldown: str | pd.Timedelta = "1h"

    def gap(self) -> pd.Timedelta:
        return parse_duration(self.merge_gap, field="merge_gap")

    def shortest(self) -> pd.Timedelta:
        return parse_duration(self.min_duration, field="min_duration")


_LOWEST = -np.finfo(np.float64).max  # what nan_to_num makes of -inf


def hysteresis(score: np.ndarray, enter: float, exit: float) -> np.ndarray:
    """Flags of a two-threshold switch: on at ``score >= enter``, off once ``score < exit``.

    Vectorised: a run of readings at or above ``exit`` is flagged from its first reading at
    or above ``enter`` to its end. NaN scores count as below both thresholds.
    """
    raw = np.asarray(score, dtype=np.float64)
    n = len(raw)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if _LOWEST < enter < np.inf and not (raw >= enter).any():
        # nothing enters (most calls), told before any copy: below a finite ``enter`` a NaN
        # is as its -inf stand-in, and ±inf as the largest floats they stand in for
        return np.zeros(n, dtype=bool)
    s = np.nan_to_num(raw, nan=-np.inf)
    exit = min(exit, enter)
    above = s >= exit
    entered = above & (s >= enter)
    if not entered.any():
        return np.zeros(n, dtype=bool)
    starts = np.flatnonzero(np.r_[True, above[1:] != above[:-1]])  # where each run begins
    run = np.cumsum(np.r_[True, above[1:] != above[:-1]]) - 1  # run id per reading
    pos = np.arange(n)
    first_enter = np.where(entered, pos, n)
    # the first entering position of each run (runs are contiguous), broadcast back
    run_first = np.minimum.reduceat(first_enter, starts)[run]
    flags: np.ndarray = above & (pos >= run_first)
    return flags


EPISODE_COLUMNS = [
    "start",
    "end",
    "detected_at",
    "n_flagged",
    "peak_ts",
    "peak_score",
    "value",
    "expected",
]


# a column of episodes_of_parts: its values, or a function that makes them when asked
Lazy: TypeAlias = npt.ArrayLike | pd.Index | pd.Series | Callable[[], object] | None


def find_episodes(
    scores: pd.DataFrame,
    *,
    max_gap: int = 0,
    merge_gap: str | pd.Timedelta | None = None,
    min_duration: str | pd.Timedelta | None = None,
    ending_from: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Group flagged rows of a detector's frame into episodes.

    Flags at most ``max_gap`` unflagged readings apart, or at most ``merge_gap`` apart in time,
    belong to one episode; episodes shorter than ``min_duration`` (from start to end) are
    dropped unless they reach the frame's last reading (still running). ``start`` is the
    first flagged reading (or the earliest ``since`` of the episode when the frame has one),
    ``end`` the last flagged reading, ``detected_at`` the first flagged reading (or the earliest
    ``detected_at``); the peak is the highest score, with its value and expected value.
    With ``ending_from``, only the episodes that end then or later.
    """
    return episodes_of_parts(
        scores.index,
        scores["value"].to_numpy(),
        scores["score"].to_numpy(),
        scores["flag"].to_numpy(dtype=bool),
        scores["expected"].to_numpy() if "expected" in scores else None,
        since=scores.get("since"),
        detected_at=scores.get("detected_at"),
        max_gap=max_gap,
        merge_gap=merge_gap,
        min_duration=min_duration,
        ending_from=ending_from,
    )


def episodes_of_parts(
    index: pd.DatetimeIndex,
    value: np.ndarray,
    score: npt.ArrayLike,
    flag: npt.ArrayLike,
    expected: Lazy = None,
    *,
    since: Lazy = None,
    detected_at: Lazy = None,
    max_gap: int = 0,
    merge_gap: str | pd.Timedelta | None = None,
    min_duration: str | pd.Timedelta | None = None,
    ending_from: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`find_episodes` of a score frame's columns, not built: the readings' ``index``
    and ``value``, their ``score`` and ``flag``, and optionally ``expected``, ``since`` and
    ``detected_at`` (each may be a function, called only when something is flagged). Only the
    flagged readings are looked at, with numpy: a 1 s sensor's ongoing dropout alert has its
    episode found again at every pass of a plant's thousand tags. The episodes that end before
    ``ending_from`` are left out before anything is made of them (a pass keeps only those
    reaching its new readings: a gap an hour back in a 1 s tag's window is flagged at every
    pass, and dropped there)."""
    pos = np.flatnonzero(np.asarray(flag, dtype=bool))
    if len(pos) == 0:  # most calls on a steady plant: a copy of the empty frame is quick
        return no_episodes()
    ts = to_epoch_ns(index)[pos]  # epoch nanoseconds, UTC, of the flagged readings
    split = np.diff(pos) > max_gap + 1
    if merge_gap is not None:
        split &= np.diff(ts) > parse_duration(merge_gap, field="merge_gap").value
    heads = np.flatnonzero(np.r_[True, split])  # each episode's first flagged reading
    counts = np.diff(np.r_[heads, len(pos)])
    tails = heads + counts - 1
    if ending_from is not None:  # the episodes' ends ascend: those kept are the last ones
        first = int(np.searchsorted(ts[tails], pd.Timestamp(ending_from).value))  # epoch ns, UTC
        if first == len(heads):
            return no_episodes()
        if first:
            cut = heads[first]
            pos, ts = pos[cut:], ts[cut:]
            heads, tails, counts = heads[first:] - cut, tails[first:] - cut, counts[first:]
    start = ts[heads] if since is None else _earliest(to_epoch_ns(_called(since))[pos], heads)
    seen = (
        ts[heads]
        if detected_at is None
        else _earliest(to_epoch_ns(_called(detected_at))[pos], heads)
    )
    scored = np.asarray(score, dtype=np.float64)[pos]
    peak = _first_max(scored, heads, counts)
    exp = _called(expected)
    columns: dict[str, np.ndarray] = {
        "start": start,
        "end": ts[tails],
        "detected_at": seen,
        "n_flagged": counts.astype(np.int64),
        "peak_ts": ts[peak],
        "peak_score": scored[peak],
        "value": np.asarray(value, dtype=np.float64)[pos][peak],
        "expected": np.full(len(heads), np.nan)
        if exp is None
        else np.asarray(exp, dtype=np.float64)[pos][peak],
    }
    if min_duration is not None:  # too short and over (before the frame's last reading): out
        shortest = parse_duration(min_duration, field="min_duration").value
        ended, begun = columns["end"], columns["start"]
        lasted = (begun != _NAT) & (ended - np.where(begun == _NAT, ended, begun) >= shortest)
        keep = lasted | (ended >= to_epoch_ns(index[-1:])[0])
        if not keep.all():
            columns = {name: values[keep] for name, values in columns.items()}
    frame = {k: _utc(v) if k in _TIMES else v for k, v in columns.items()}
    return pd.DataFrame(frame, copy=False)  # its own arrays, made here


_TIMES = ("start", "end", "detected_at", "peak_ts")
_NAT = np.iinfo(np.int64).min  # NaT as int64


def _utc(ns: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC").array


def _called(values: Lazy) -> object:
    return values() if callable(values) else values


def _earliest(times: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Each episode's earliest time (episodes are runs of ``times``, epoch nanoseconds, from
    ``heads``; NaT is passed over, as a groupby's min does)."""
    top = np.iinfo(np.int64).max
    low = np.minimum.reduceat(np.where(times == _NAT, top, times), heads)
    return np.where(low == top, _NAT, low)


def _first_max(score: np.ndarray, heads: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each episode's position of its highest score, the first where several are (NaN passed
    over, as a groupby's idxmax does; an episode of NaN scores peaks at its start)."""
    high = np.fmax.reduceat(score, heads)
    top = np.flatnonzero(score == np.repeat(high, counts))
    if len(top) == 0:
        return heads
    at = np.searchsorted(top, heads)
    found = top[np.minimum(at, len(top) - 1)]
    inside = (at < len(top)) & (found < heads + counts)
    return np.where(inside, found, heads)


def _dtype(column: str) -> str:
    if column in {"start", "end", "detected_at", "peak_ts"}:
        return "datetime64[ns, UTC]"
    return "int64" if column == "n_flagged" else "float64"


# Built once: making the eight typed empty columns costs about a millisecond a call, and an
# incremental detect pass asks for them four times per sensor.
_NO_EPISODES = pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in EPISODE_COLUMNS})


def no_episodes() -> pd.DataFrame:
    """:func:`find_episodes`' result when nothing is flagged: its columns, no row (a shallow
    copy: its columns hold nothing to share)."""
    return _NO_EPISODES.copy(deep=False)
