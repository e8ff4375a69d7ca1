"""The effect of injected events on readings — one pure function shared by streamer and scenarios.

Times are the sensor's data time (for an accelerated streamer, simulated time). An event is
active on readings with ``starts_at <= ts < ends_at`` (``ends_at`` None: until normalized).
Magnitudes are in the sensor's units; scenario generators convert from multiples of σ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantcast.core.timeutil import to_epoch_us
from plantcast.core.types import EventKind
from plantcast.signals.model import hashed_normal

# Effects are applied in this order: additive ones first, then the ones that replace or remove.
_ORDER = {
    EventKind.LEVEL_SHIFT: 0,
    EventKind.DRIFT: 0,
    EventKind.SPIKE: 0,
    EventKind.NOISE_BURST: 1,
    EventKind.STUCK: 2,
    EventKind.DROPOUT: 3,
}


@dataclass(frozen=True)
class EventSpec:
    kind: EventKind
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp | None
    magnitude: float = 0.0

    def mask(self, index: pd.DatetimeIndex) -> np.ndarray:
        m = index >= self.starts_at
        if self.ends_at is not None:
            m &= index < self.ends_at
        return np.asarray(m)


def apply_events(
    index: pd.DatetimeIndex,
    values: np.ndarray,
    events: list[EventSpec] | tuple[EventSpec, ...],
    *,
    seed: int = 0,
    previous_value: float | None = None,
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Apply events to readings; returns the (possibly shorter, for dropouts) index and values.

    ``previous_value`` is the last reading before ``index`` (what a stuck sensor repeats when
    the event started before this batch).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    keep = np.ones(len(index), dtype=bool)
    for ev in sorted(events, key=lambda e: (_ORDER[EventKind(e.kind)], e.starts_at)):
        m = ev.mask(index)
        if not m.any():
            continue
        kind = EventKind(ev.kind)
        if kind in (EventKind.LEVEL_SHIFT, EventKind.SPIKE):
            out[m] += ev.magnitude
        elif kind is EventKind.DRIFT:
            if ev.ends_at is None:
                raise ValueError("a drift needs a duration")
            span = (ev.ends_at - ev.starts_at).value
            frac = (index[m].asi8 - ev.starts_at.value) / span
            out[m] += ev.magnitude * np.clip(frac, 0.0, 1.0)
        elif kind is EventKind.NOISE_BURST:
            out[m] += ev.magnitude * hashed_normal(seed + 7919, to_epoch_us(index[m]))
        elif kind is EventKind.STUCK:
            before = np.flatnonzero(~m & (index < ev.starts_at))
            held = out[before[-1]] if len(before) else previous_value
            if held is None:  # nothing to repeat yet: the first reading becomes the held value
                held = out[np.flatnonzero(m)[0]]
            out[m] = held
        elif kind is EventKind.DROPOUT:
            keep &= ~m
    return index[keep], out[keep]
