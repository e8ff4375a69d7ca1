"""The alert lifecycle, pure: which alerts a batch of episodes opens, extends or closes.

One alert per episode of a sensor, not per detector: an episode that touches an alert (within
the cooldown of the episode's detector) joins it, whichever detector raised either. The alert
keeps the detector that opened it (``detector``, with its peak ``score``, ``value`` and
``expected``) and every detector that agreed, each with its own peak score (``detectors``:
scores of different detectors are on different scales, so none is ranked against another).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

import pandas as pd

from plantcast.core.timeutil import TimeLike, parse_duration, to_utc

Tolerance: TypeAlias = str | pd.Timedelta | Mapping[str, str | pd.Timedelta]


class Episode(NamedTuple):
    """One episode as :func:`merge_episodes` reads it (a row of ``find_episodes``' frame)."""

    start: pd.Timestamp
    end: pd.Timestamp
    peak_score: float
    value: float
    expected: float
    detector: str | None


def episode_records(episodes: pd.DataFrame, detector: str | None = None) -> list[Episode]:
    """The rows of an episodes frame as :class:`Episode` records (their ``detector`` column,
    else ``detector``): taken column by column, not row by row, as a detect pass merges a
    sensor's episodes into its alerts at every pass."""
    if episodes.empty:
        return []
    names = episodes["detector"].tolist() if "detector" in episodes else [detector] * len(episodes)
    columns = [episodes[c].tolist() for c in ("start", "end", "peak_score", "value", "expected")]
    return [Episode(*row) for row in zip(*columns, names, strict=True)]


def agreeing(alert: Mapping[str, Any]) -> dict[str, float]:
    """An alert's ``{detector: peak score}``; an alert stored before detectors were merged
    lists only the one that raised it."""
    found = alert.get("detectors") or {}
    if not found:
        return {alert["detector"]: float(alert.get("score") or 0.0)}
    return {str(k): float(v) for k, v in dict(found).items()}


def _alert_from(
    ep: Any, detector: str, ongoing: bool, memoryless: Collection[str]
) -> dict[str, Any]:
    fields = {
        "detector": detector,
        "ts": ep.start,
        "ends_at": None if ongoing else ep.end,
        "score": float(ep.peak_score),
        "value": float(ep.value),
        "expected": None if pd.isna(ep.expected) else float(ep.expected),
        "detectors": {detector: float(ep.peak_score)},
    }
    if detector in memoryless:
        fields["seen_until"] = ep.end
    return fields


def _touches(alert: dict[str, Any], ep: Any, tol: pd.Timedelta) -> bool:
    end = alert["ends_at"]
    return bool(
        ep.end >= to_utc(alert["ts"]) - tol and (end is None or ep.start <= to_utc(end) + tol)
    )


def _seen_until(
    stored: dict[str, Any], seen: list[tuple[Any, str, bool]], memoryless: Collection[str]
) -> pd.Timestamp | None:
    """The end of the newest episode of a memoryless detector in an alert, once the episodes
    ``seen`` are part of it (None: it has none)."""
    ends = [ep.end for ep, name, _ in seen if name in memoryless]
    if stored.get("seen_until") is not None:
        ends.append(to_utc(stored["seen_until"]))
    return max(ends) if ends else None


def _joined(
    stored: dict[str, Any],
    seen: list[tuple[Any, str, bool]],
    memoryless: Collection[str] = (),
    open_from: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """The fields of an alert once the episodes ``seen`` (episode, detector, ongoing) are part
    of it: ongoing while any is, or while its newest memoryless episode ended at or after
    ``open_from``; otherwise ending at the last end (an ongoing alert whose episodes all
    ended closes there: its window was scored from the alert's start)."""
    end = stored["ends_at"]
    seen_until = _seen_until(stored, seen, memoryless)
    remembered = seen_until is not None and open_from is not None and seen_until >= open_from
    if remembered or any(ongoing for _, _, ongoing in seen):
        new_end = None
    else:
        last = max(ep.end for ep, _, _ in seen)
        last = last if seen_until is None else max(last, seen_until)
        new_end = last if end is None else max(to_utc(end), last)
    out: dict[str, Any] = {"ends_at": new_end}
    if seen_until is not None:
        out["seen_until"] = seen_until
    scores = agreeing(stored)
    for ep, name, _ in seen:
        scores[name] = max(scores.get(name, float("-inf")), float(ep.peak_score))
        if name == stored["detector"] and float(ep.peak_score) > float(stored["score"] or 0.0):
            out["score"] = float(ep.peak_score)
            out["value"] = float(ep.value)
            out["expected"] = None if pd.isna(ep.expected) else float(ep.expected)
    out["detectors"] = scores
    return out


def _changes(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """What differs between ``stored`` and ``fields`` ({} if nothing does)."""
    changes = {}
    for key, value in fields.items():
        old = stored.get(key)
        if key in ("ends_at", "seen_until"):
            old = None if old is None else to_utc(old)
        elif key == "detectors":
            old = agreeing(stored)
        if value != old:
            changes[key] = value
    return changes


# A lone reading (an episode of one flagged reading) that no other detector flags within the
# tolerance is, on real recordings, a sensor's odd reading far more often than a fault: it opens
# an alert only from LONE_FACTOR × its detector's threshold. Detectors whose episodes are
# single readings by nature (a gap, a flat run's onset) are not held to it.
LONE_FACTOR = 1.25
LONE_DETECTORS = ("residual_z",)


def drop_uncorroborated(
    found: Mapping[str, pd.DataFrame],
    thresholds: Mapping[str, float],
    *,
    tolerance: str | pd.Timedelta = "0s",
    factor: float = LONE_FACTOR,
    detectors: Collection[str] = LONE_DETECTORS,
) -> dict[str, pd.DataFrame]:
    """``found`` ({detector: episodes}) less the lone readings of ``detectors`` below
    ``factor`` × their threshold (``thresholds``) that no other detector's episode comes
    within ``tolerance`` of. A detector without a threshold keeps all its episodes."""
    tol = parse_duration(tolerance, field="tolerance")
    out = dict(found)
    for name in detectors:
        eps = found.get(name)
        if eps is None or eps.empty or name not in thresholds:
            continue
        weak = (eps["n_flagged"].to_numpy() <= 1) & (
            eps["peak_score"].to_numpy() < factor * thresholds[name]
        )
        if not weak.any():
            continue
        others = [e for n, e in found.items() if n != name and len(e)]
        for i in weak.nonzero()[0]:
            start, end = eps["start"].iloc[i], eps["end"].iloc[i]
            weak[i] = not any(
                bool(((o["start"] <= end + tol) & (o["end"] >= start - tol)).any()) for o in others
            )
        out[name] = eps[~weak]
    return out


def drop_unlearnt(
    found: Mapping[str, pd.DataFrame], allowed: Mapping[str, int]
) -> dict[str, pd.DataFrame]:
    """``found`` ({detector: episodes}) less the episodes of each detector that flags more of
    them than ``allowed`` (its own count, by name; a detector not named keeps all of them).

    For a fit made in-sample (a young sensor's first one, on the very readings it scores): its
    thresholds were calibrated to flag at most ``allowed`` blocks of that window
    (:func:`~plantcast.detect.calibration.allowed_exceedances`), and the episodes left out of
    its training as anomalies are the ones it flags. A detector that still flags more than
    that has not learnt the sensor yet (a daily burst, a spike it makes every day): those are
    the sensor's habits as much as faults, so none of them alerts. One fault in a young
    sensor's first readings still does."""
    out = dict(found)
    for name, eps in found.items():
        if name in allowed and len(eps) > allowed[name]:
            out[name] = eps.iloc[:0]
    return out


def merge_episodes(
    existing: list[dict[str, Any]],
    new_episodes: pd.DataFrame | Sequence[Episode],
    *,
    detector: str | None = None,
    gap_tolerance: Tolerance = "0s",
    scored_until: TimeLike | None = None,
    resolve_after: str | pd.Timedelta = "0s",
    close_unmatched_at: TimeLike | None = None,
    scored_detectors: Collection[str] | None = None,
    memoryless: Collection[str] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Decide ``(to_update, to_insert)`` so that re-running detection adds nothing.

    ``existing``: the sensor's alerts that may overlap the scored window, as dicts with ``id``,
    ``detector``, ``ts`` (start), ``ends_at`` (None while ongoing), ``score`` and ``detectors``
    (``{detector: peak score}``; absent: the one that raised it). ``new_episodes`` comes from
    :func:`find_episodes` (with a ``detector`` column, or pass ``detector=``), or as its
    :func:`episode_records`. An episode
    within ``gap_tolerance`` (the cooldown; one duration, or one per detector) of an alert
    joins it, whichever detector raised either; others become new alerts. An episode that
    ended less than ``resolve_after`` before ``scored_until`` (the last scored reading) is
    ongoing: an alert stays open (``ends_at`` None) while any of its episodes is, and
    resolves itself once the signal has been normal that long. With ``close_unmatched_at``,
    an ongoing alert that no episode continues is closed there (its anomaly ended before the
    scored window) — only when every detector that agreed on it was scored
    (``scored_detectors``; default: ``detector``, or all when None): a detector that could
    not run leaves its alerts as they are.
    An alert keeps the end of its newest episode of a ``memoryless`` detector (whose
    episodes no later reading changes, ``Detector.memoryless``) as ``seen_until``. Such an
    alert, when every detector that agreed on it is memoryless, need not be rescored whole:
    no episode continuing it, it stays open while ``seen_until`` is within ``resolve_after``
    of ``scored_until`` and then closes at ``seen_until`` (``close_unmatched_at`` aside).
    ``to_update`` holds ``{"id": ..., <changed fields>}``; ``to_insert`` holds full alert dicts.
    Score the window from the start of the oldest ongoing alert not kept by ``seen_until``,
    so its episode is seen whole.
    """
    until = None if scored_until is None else to_utc(scored_until)
    settle = parse_duration(resolve_after, field="resolve_after")
    open_from = None if until is None else until - settle  # an episode ending since: ongoing
    stored = [dict(a) for a in existing]
    running = [dict(a) for a in stored]  # alerts as the episodes so far have changed them
    inserts: list[dict[str, Any]] = []
    seen: dict[int, list[tuple[Any, str, bool]]] = {}
    records = (
        episode_records(new_episodes) if isinstance(new_episodes, pd.DataFrame) else new_episodes
    )
    for ep in sorted(records, key=lambda e: e.start):
        name = ep.detector or detector
        if name is None:
            raise ValueError("episodes need a detector column or detector=")
        ongoing = open_from is not None and ep.end >= open_from
        tol = _tolerance(gap_tolerance, name)
        match = next((i for i, a in enumerate(running) if _touches(a, ep, tol)), None)
        if match is None:
            running.append(_alert_from(ep, name, ongoing, memoryless))
            inserts.append(running[-1])
            match = len(running) - 1
            base = {**running[match], "ends_at": ep.end, "detectors": {}}
            stored.append(base)
        seen.setdefault(match, []).append((ep, name, ongoing))
        running[match].update(_joined(stored[match], seen[match], memoryless, open_from))
    updates = []
    for i, a in enumerate(stored[: len(existing)]):
        if i in seen:
            changes = _changes(a, _joined(a, seen[i], memoryless, open_from))
        elif (
            close_unmatched_at is not None
            and a["ends_at"] is None
            and _all_scored(a, scored_detectors, detector)
        ):
            if a.get("seen_until") is not None and set(agreeing(a)) <= set(memoryless):
                seen_until = to_utc(a["seen_until"])  # its episode was not rescored
                if open_from is None or seen_until >= open_from:
                    continue
                changes = {"ends_at": max(to_utc(a["ts"]), seen_until)}
            else:
                changes = {"ends_at": max(to_utc(a["ts"]), to_utc(close_unmatched_at))}
        else:
            continue
        if changes and "id" in a:
            updates.append({"id": a["id"], **changes})
    return updates, inserts


def _tolerance(tol: Tolerance, name: str) -> pd.Timedelta:
    value = tol.get(name, "0s") if isinstance(tol, Mapping) else tol
    return parse_duration(value, field="gap_tolerance")


def _all_scored(
    alert: dict[str, Any], scored: Collection[str] | None, detector: str | None
) -> bool:
    names = set(scored) if scored is not None else {detector} if detector else None
    return names is None or set(agreeing(alert)) <= names
