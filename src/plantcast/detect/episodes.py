"""Episodes: flagged readings grouped so that one ongoing anomaly is one episode."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def find_episodes(scores: pd.DataFrame, *, max_gap: int = 0) -> pd.DataFrame:
    """Group flagged rows of a detector's frame into episodes.

    Flags at most ``max_gap`` unflagged readings apart belong to one episode. ``start`` is the
    first flagged reading (or the earliest ``since`` of the episode when the frame has one),
    ``end`` the last flagged reading, ``detected_at`` the first flagged reading (or the earliest
    ``detected_at``); the peak is the highest score, with its value and expected value.
    """
    flag = scores["flag"].to_numpy(dtype=bool)
    pos = np.flatnonzero(flag)
    if len(pos) == 0:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in EPISODE_COLUMNS})
    group = np.concatenate([[0], np.cumsum(np.diff(pos) > max_gap + 1)])
    sub = scores.iloc[pos]
    ts = sub.index
    heads = np.flatnonzero(np.r_[True, np.diff(group) > 0])
    tails = np.r_[heads[1:] - 1, len(pos) - 1]
    start = ts[heads]
    detected = ts[heads]
    if "since" in sub:
        start = pd.Series(sub["since"].to_numpy()).groupby(group).min().to_numpy()
    if "detected_at" in sub:
        detected = pd.Series(sub["detected_at"].to_numpy()).groupby(group).min().to_numpy()
    score = sub["score"].to_numpy()
    peak = pd.Series(score).groupby(group).idxmax().to_numpy()
    return pd.DataFrame(
        {
            "start": pd.DatetimeIndex(start, tz="UTC") if _naive(start) else start,
            "end": ts[tails],
            "detected_at": pd.DatetimeIndex(detected, tz="UTC") if _naive(detected) else detected,
            "n_flagged": np.diff(np.r_[heads, len(pos)]),
            "peak_ts": ts[peak],
            "peak_score": score[peak],
            "value": sub["value"].to_numpy()[peak],
            "expected": sub["expected"].to_numpy()[peak],
        }
    )


def _naive(values) -> bool:
    return isinstance(values, np.ndarray) and values.dtype.kind == "M"


def _dtype(column: str):
    if column in {"start", "end", "detected_at", "peak_ts"}:
        return "datetime64[ns, UTC]"
    return "int64" if column == "n_flagged" else "float64"
