"""What a sensor's chart draws over its readings: silenced spans (shaded), annotations (marks
or spans with their text) and limits (lines). One call for the page, or one per thing."""

from __future__ import annotations

from dataclasses import dataclass

from plantcast.core.timeutil import TimeLike
from plantcast.services.limits import Limits, sensor_limits
from plantcast.services.notes import Annotation, sensor_annotations
from plantcast.services.silences import SilenceWindow, sensor_silences
from plantcast.store import Store

__all__ = ["Overlays", "chart_overlays", "sensor_annotations", "sensor_limits", "sensor_silences"]


@dataclass(frozen=True)
class Overlays:
    silences: list[SilenceWindow]  # clipped to the chart's range, in time order
    annotations: list[Annotation]  # overlapping the range, oldest first
    limits: Limits | None  # None: no limit set


def chart_overlays(store: Store, sensor_name: str, start: TimeLike, end: TimeLike) -> Overlays:
    """Everything drawn over a sensor's chart of ``[start, end)``."""
    return Overlays(
        sensor_silences(store, sensor_name, start, end),
        sensor_annotations(store, sensor_name, start, end),
        sensor_limits(store, sensor_name),
    )
