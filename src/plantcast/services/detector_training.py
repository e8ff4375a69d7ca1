"""Fitting a chunk's detectors on the history before it, without the anomalies it holds.

``plantcast.services.detection.score_chunk`` fits each detector here: on the history before the
chunk (or, for a young sensor, on the chunk's first readings), with only the seasons that
history can fit, and then again without the episodes the fitted detectors find in their own
training window, so a past anomaly does not raise the thresholds that should catch the next.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import parse_duration
from plantcast.detect import Detector


def usable_periods(periods: tuple[str, ...], span: pd.Timedelta) -> tuple[str, ...]:
    """The seasons this much history can fit (two cycles each); at least the shortest, so a
    young sensor's detectors say how much they need rather than silently drop every season.
    A sensor without a season (``()``) is modelled without one."""
    ordered = sorted(periods, key=parse_duration)
    fit = tuple(p for p in ordered if 2 * parse_duration(p) <= span)
    return fit or tuple(ordered[:1])


def fit_on_history(det: Detector, train: pd.Series, everything: pd.Series) -> pd.Series:
    """Fit on the history before the chunk; without enough of it, on the chunk's first
    training span of readings (in-sample: a young sensor learns from the earliest it has).
    Returns the readings it was fitted on."""
    try:
        det.fit(train)
        return train
    except PlantcastError:
        if len(everything) <= len(train):
            raise
        det.fit(everything)
        return everything


# Tuned on scenario seeds 1000-1019 (never the reported ones): 2 passes and 6 h either side
# took held-out Gaussian spike F1 at >= 5σ (seeds 7-56) from 0.481 to 0.947; 4 passes or a
# 12 h pad changed nothing there. ``_probe`` then took seeds 1000-1099 from 0.910 to 0.932.
CLEAN_PASSES = 2
CLEAN_PAD = pd.Timedelta("6h")
# ... but at most this share of the training window: a young 1 s sensor's 15 minutes would
# otherwise be padded away whole, its fault kept in and its thresholds raised above it.
CLEAN_PAD_SHARE = 1 / 8
CLEANED = ("residual_z", "level_shift", "stuck")
# The pattern detectors are refitted without those detectors' episodes and their own, but
# their episodes leave the others' windows alone: adding one to a run changes no other's fit.
CLEANED_ALONE = ("drift", "scale_change", "profile_change", "discord")


CLEAN_BAR = 1.5  # 1.2 and 2.0 found the same on tuning seeds 1000-1099


def _probe(det: Detector) -> Detector:
    """The detector as the cleaning sees it: a threshold that anomalies in the window have
    raised above ``CLEAN_BAR`` × its configured minimum is taken back to that bar, so they
    are found (and left out) rather than hidden by the threshold they inflated."""
    base = getattr(det, "threshold", None)
    if base is None or det.threshold_ <= CLEAN_BAR * base:
        return det
    probe = copy.copy(det)
    probe.threshold_ = CLEAN_BAR * base
    return probe


def refit_without_anomalies(dets: dict[str, Detector], used: dict[str, pd.Series]) -> None:
    """Past anomalies are not normal: a training window that holds one (last week's burst,
    a step, a stuck spell) would raise the sensor's thresholds until it is blind to the
    next. The episodes the fitted detectors find in their own windows are left out (with
    ``clean_pad`` either side) and those detectors refitted, ``CLEAN_PASSES`` times at most:
    the ``CLEANED`` detectors without all of their episodes, a ``CLEANED_ALONE`` one without
    those and its own. Gaps are what dropout learns from: it keeps its window as it is."""
    shared = [n for n in dets if n in CLEANED]
    alone = [n for n in dets if n in CLEANED_ALONE]
    for _ in range(CLEAN_PASSES):
        found = {n: _probe(dets[n]).episodes(used[n])[["start", "end"]] for n in shared + alone}
        pool = [found[n] for n in shared if len(found[n])]
        changed = False
        for n in shared + alone:
            spans = pool + ([found[n]] if n in alone and len(found[n]) else [])
            if spans:
                changed |= _refit_without(dets[n], used, n, pd.concat(spans))
        if not changed:
            return


def clean_pad(index: pd.DatetimeIndex) -> int:
    """The pad (ns) either side of an episode left out of a training window: ``CLEAN_PAD``,
    at most ``CLEAN_PAD_SHARE`` of the window's span."""
    span = int(index[-1].value - index[0].value) if len(index) > 1 else 0
    return min(CLEAN_PAD.value, int(span * CLEAN_PAD_SHARE))


def _refit_without(det: Detector, used: dict[str, pd.Series], name: str, eps) -> bool:
    """Refit ``det`` on ``used[name]`` less ``eps`` (± ``CLEAN_PAD``); whether it left any out."""
    eps = eps.sort_values("start")
    pad = clean_pad(used[name].index)
    lo = eps["start"].to_numpy(dtype="datetime64[ns]").astype("int64") - pad
    hi = eps["end"].to_numpy(dtype="datetime64[ns]").astype("int64") + pad
    hi = np.maximum.accumulate(hi)
    ns = used[name].index.as_unit("ns").asi8
    first = np.searchsorted(lo, ns, side="right") - 1
    inside = (first >= 0) & (ns <= hi[np.maximum(first, 0)])
    if not inside.any():
        return False
    try:
        det.fit(used[name][~inside])
        used[name] = used[name][~inside]
    except PlantcastError:
        det.fit(used[name])  # too little left: the window as it is
    return True
