"""Labeled scenarios: a seeded signal with injected events of every kind at known times."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration, to_utc
from plantcast.core.types import EventKind
from plantcast.signals.events import EventSpec, apply_events
from plantcast.signals.model import SignalModel, generate_readings

# Event length in samples (min, max inclusive); a spike is one reading.
DURATIONS: dict[EventKind, tuple[int, int]] = {
    EventKind.SPIKE: (1, 1),
    EventKind.LEVEL_SHIFT: (12, 48),
    EventKind.DRIFT: (12, 48),
    EventKind.STUCK: (6, 24),
    EventKind.DROPOUT: (4, 24),
    EventKind.NOISE_BURST: (6, 24),
}
# Kinds whose magnitude means something (in units of σ); stuck and dropout have none.
SIZED = frozenset({EventKind.SPIKE, EventKind.LEVEL_SHIFT, EventKind.DRIFT, EventKind.NOISE_BURST})
LABEL_COLUMNS = ["kind", "starts_at", "ends_at", "magnitude", "magnitude_sigma"]


@dataclass(frozen=True)
class Scenario:
    """A labeled series: ``series`` (with events), ``clean`` (without) and ``labels``.

    ``labels`` has one row per event: kind, starts_at, ends_at (exclusive), magnitude (sensor
    units; noise bursts: σ of the added noise) and magnitude_sigma (the same in units of σ).
    The first ``warmup`` of the series holds no event, so detectors can be fitted on it.
    """

    series: pd.Series
    clean: pd.Series
    labels: pd.DataFrame
    events: tuple[EventSpec, ...]
    model: SignalModel | None  # None: a real recording as background
    interval: pd.Timedelta
    warmup: pd.Timedelta

    @property
    def train(self) -> pd.Series:
        """The event-free warm-up part of the series."""
        return self.series[self.series.index < self.series.index[0] + self.warmup]


def _place(
    rng: np.random.Generator, kinds: list[EventKind], n_slots_from: int, n_points: int, guard: int
) -> list[tuple[EventKind, int, int]]:
    """Shuffle kinds into equal slots after the warm-up; return (kind, first, length) per event."""
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    slot = (n_points - n_slots_from) // max(len(order), 1)
    placed = []
    for i, kind in enumerate(order):
        lo, hi = DURATIONS[kind]
        length = int(rng.integers(lo, hi + 1))
        room = slot - length - 2 * guard
        if room < 0:
            raise ValueError(
                f"{len(order)} events do not fit in the series with {guard} samples between them:"
                " give more days or fewer kinds"
            )
        first = n_slots_from + i * slot + guard + int(rng.integers(0, room + 1))
        placed.append((kind, first, length))
    return placed


def generate_scenario(
    seed: int,
    *,
    days: float = 28,
    interval: str | pd.Timedelta = "30min",
    kinds: Iterable[EventKind | str] = tuple(EventKind),
    events_per_kind: int = 1,
    magnitudes_sigma: tuple[float, float] = (3.0, 10.0),
    model: SignalModel | None = None,
    noise_kind: str = "uniform",
    start="2024-01-01",
    warmup: str | pd.Timedelta = "7d",
    guard: str | pd.Timedelta = "12h",
) -> Scenario:
    """A seeded scenario: ``days`` of readings, a clean ``warmup``, then non-overlapping events.

    Each event's magnitude is drawn uniformly in ``magnitudes_sigma`` (times ``model.noise_std``)
    with a random sign; events are at least ``guard`` apart. ``model`` defaults to the demo's
    signal with ``seed`` as its noise seed; ``noise_kind="gaussian"`` swaps its uniform ±2 noise
    for Gaussian noise of the same σ (heavier tails: the honest case for false alerts).
    Pure: a local RNG, no files, no network.
    """
    rng = np.random.default_rng(seed)
    if model is None:
        model = SignalModel(seed=seed)
        if noise_kind == "gaussian":
            model = SignalModel(seed=seed, noise=model.noise_std, noise_kind="gaussian")
    step = parse_duration(interval, field="interval")
    warm, gap = parse_duration(warmup, field="warmup"), parse_duration(guard, field="guard")
    clean = generate_readings(
        model, to_utc(start), periods=int(pd.Timedelta(days=days) / step), interval=step
    )
    series, labels, events = inject_labeled(
        clean,
        rng,
        model.noise_std,
        seed=seed,
        kinds=kinds,
        events_per_kind=events_per_kind,
        magnitudes_sigma=magnitudes_sigma,
        first=int(np.ceil(warm / step)),
        guard=int(np.ceil(gap / step)),
    )
    return Scenario(series, clean, labels, events, model, step, warm)


def inject_labeled(
    clean: pd.Series,
    rng: np.random.Generator,
    sigma: float,
    *,
    seed: int,
    kinds: Iterable[EventKind | str],
    events_per_kind: int,
    magnitudes_sigma: tuple[float, float],
    first: int,
    guard: int,
) -> tuple[pd.Series, pd.DataFrame, tuple[EventSpec, ...]]:
    """Place events (after reading ``first``, ``guard`` readings apart) and apply them.

    Magnitudes are drawn uniformly in ``magnitudes_sigma`` times ``sigma`` with a random sign
    (noise bursts: positive). Returns the series with events, the labels and the events.
    """
    idx = clean.index
    step = pd.Timedelta(int(np.median(np.diff(idx.asi8))), unit="ns")
    kind_list = [EventKind(k) for k in kinds for _ in range(events_per_kind)]
    placed = _place(rng, kind_list, first, len(idx), guard)
    events, rows = [], []
    for kind, pos, length in sorted(placed, key=lambda p: p[1]):
        starts_at = idx[pos]
        ends_at = starts_at + length * step
        mag_sigma = float(rng.uniform(*magnitudes_sigma)) if kind in SIZED else float("nan")
        if kind in SIZED and kind is not EventKind.NOISE_BURST:
            mag_sigma *= rng.choice([-1.0, 1.0])
        magnitude = 0.0 if np.isnan(mag_sigma) else mag_sigma * sigma
        events.append(EventSpec(kind, starts_at, ends_at, magnitude))
        rows.append((kind.value, starts_at, ends_at, magnitude, mag_sigma))
    new_idx, values = apply_events(idx, clean.to_numpy(), events, seed=seed)
    series = pd.Series(values, index=new_idx, name="value")
    return series, pd.DataFrame(rows, columns=LABEL_COLUMNS), tuple(events)
