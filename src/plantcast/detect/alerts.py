"""The alert lifecycle, pure: which alerts a batch of episodes opens, extends or closes."""

from __future__ import annotations

from typing import Any

import pandas as pd

from plantcast.core.timeutil import TimeLike, parse_duration, to_utc


def _alert_from(ep: Any, detector: str | None, ongoing: bool) -> dict[str, Any]:
    return {
        "detector": detector,
        "ts": ep.start,
        "ends_at": None if ongoing else ep.end,
        "score": float(ep.peak_score),
        "value": float(ep.value),
        "expected": None if pd.isna(ep.expected) else float(ep.expected),
    }


def _touches(alert: dict[str, Any], ep: Any, tol: pd.Timedelta) -> bool:
    end = alert["ends_at"]
    return bool(
        ep.end >= to_utc(alert["ts"]) - tol and (end is None or ep.start <= to_utc(end) + tol)
    )


def _extend(alert: dict[str, Any], ep: Any, ongoing: bool) -> dict[str, Any]:
    """The changed fields of ``alert`` once ``ep`` is part of it ({} if nothing changes)."""
    changes: dict[str, Any] = {}
    end = alert["ends_at"]
    new_end = None if ongoing else ep.end if end is None else max(to_utc(end), ep.end)
    if new_end != (None if end is None else to_utc(end)):
        changes["ends_at"] = new_end
    if float(ep.peak_score) > float(alert.get("score") or 0.0):
        changes["score"] = float(ep.peak_score)
        changes["value"] = float(ep.value)
        changes["expected"] = None if pd.isna(ep.expected) else float(ep.expected)
    return changes


def merge_episodes(
    existing: list[dict[str, Any]],
    new_episodes: pd.DataFrame,
    *,
    detector: str | None = None,
    gap_tolerance: str | pd.Timedelta = "0s",
    scored_until: TimeLike | None = None,
    resolve_after: str | pd.Timedelta = "0s",
    close_unmatched_at: TimeLike | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Decide ``(to_update, to_insert)`` so that re-running detection adds nothing.

    ``existing``: the sensor's alerts that may overlap the scored window, as dicts with ``id``,
    ``detector``, ``ts`` (start), ``ends_at`` (None while ongoing) and ``score``. ``new_episodes``
    comes from :func:`find_episodes` (with a ``detector`` column, or pass ``detector=``). An
    episode within ``gap_tolerance`` of an alert of the same detector extends it; others become
    new alerts (``gap_tolerance`` is the cooldown: a new episode that soon after an alert's
    end continues it). An episode that ended less than ``resolve_after`` before
    ``scored_until`` (the last scored reading) is ongoing (``ends_at`` None): an alert
    resolves itself once the signal has been normal that long, and is then closed at the
    episode's end. With ``close_unmatched_at``, an ongoing alert that no episode continues
    is closed there (its anomaly ended before the scored window).
    ``to_update`` holds ``{"id": ..., <changed fields>}``; ``to_insert`` holds full alert dicts.
    Score the window from the start of the oldest ongoing alert, so its episode is seen whole.
    """
    tol = parse_duration(gap_tolerance, field="gap_tolerance")
    until = None if scored_until is None else to_utc(scored_until)
    alerts = [dict(a) for a in existing]
    updates: dict[Any, dict[str, Any]] = {}
    inserts: list[dict[str, Any]] = []
    settle = parse_duration(resolve_after, field="resolve_after")
    matched: set[int] = set()
    for ep in new_episodes.sort_values("start").itertuples(index=False):
        name = getattr(ep, "detector", None) or detector
        ongoing = until is not None and ep.end >= until - settle
        match = next(
            (a for a in alerts + inserts if a["detector"] == name and _touches(a, ep, tol)), None
        )
        if match is None:
            inserts.append(_alert_from(ep, name, ongoing))
            continue
        matched.add(id(match))
        changes = _extend(match, ep, ongoing)
        match.update(changes)
        if changes and "id" in match:
            updates.setdefault(match["id"], {"id": match["id"]}).update(changes)
    if close_unmatched_at is not None:
        at = to_utc(close_unmatched_at)
        for a in alerts:
            mine = detector is None or a["detector"] == detector
            if mine and a["ends_at"] is None and id(a) not in matched and "id" in a:
                end = max(to_utc(a["ts"]), at)
                updates.setdefault(a["id"], {"id": a["id"]})["ends_at"] = end
    return list(updates.values()), inserts
