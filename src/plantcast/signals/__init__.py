"""Signals: pure, seeded models of sensors, and the effect of injected events on readings.

A :class:`SignalModel` maps timestamps to values — baseline, one or more cycles, linear drift and
noise. Noise is a hash of (seed, timestamp), not a stream of draws, so the same instant always
gets the same value: a backfill and a streamer agree, and a replayed write is idempotent.
``plantcast.signals.pump`` simulates a whole asset: a pump whose sensors are physically coupled,
with labelled faults that break those relations while every sensor stays in its own range.
"""

from plantcast.signals.events import EventSpec, apply_events
from plantcast.signals.model import Cycle, SignalModel, generate_readings

__all__ = ["Cycle", "EventSpec", "SignalModel", "apply_events", "generate_readings"]
