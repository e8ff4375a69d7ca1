"""A simulated pump: six physically coupled sensors (plus ambient) and labelled relationship faults.

The pump's relative speed ``r`` follows a duty profile (a daily demand cycle, set-point holds
of one to eight hours, ramps), so every sensor sweeps a wide range on its own. The others
follow the affinity laws and the motor and bearing physics:

* flow ∝ r, discharge pressure = suction + head ∝ r² (suction wanders slowly: tank level),
* motor current = no-load current + a term ∝ shaft power ∝ r³,
* bearing temperature follows ambient + friction heat ∝ r² through a first-order lag,
* vibration = base + a term ∝ r².

A fault breaks one of those relations while every sensor stays inside its own normal range
(the span the clean asset covers over the scenario), which is what a per-sensor detector
cannot see. Magnitudes are in units of ``RELATION_SIGMA``: the spread of a sensor about its
physical relation to the true state of the others (its measurement noise, and for the
discharge pressure the unmeasured suction wander). Pure and seeded: a local RNG, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from plantcast.core.timeutil import parse_duration, to_utc

SENSORS = (
    "speed",
    "flow",
    "discharge_pressure",
    "motor_current",
    "bearing_temp",
    "vibration",
    "ambient_temp",
)
NOISE = {
    "speed": 4.0,  # rpm
    "flow": 0.8,  # m³/h
    "discharge_pressure": 0.03,  # bar
    "motor_current": 0.4,  # A
    "bearing_temp": 0.2,  # °C
    "vibration": 0.05,  # mm/s RMS
    "ambient_temp": 0.2,  # °C
}
SUCTION_WANDER = 0.02  # bar: the stationary σ of the unmeasured suction pressure's wander
RELATION_SIGMA = {
    **NOISE,
    "discharge_pressure": float(np.hypot(NOISE["discharge_pressure"], SUCTION_WANDER)),
}
FAULTS = ("impeller_wear", "cavitation", "drifting_sensor", "bearing_heat", "sticking_valve")
# The sensor whose relation each fault breaks (a drifting sensor picks one of these at random).
FAULTY_SENSOR = {
    "impeller_wear": "discharge_pressure",
    "cavitation": "vibration",
    "bearing_heat": "bearing_temp",
    "sticking_valve": "flow",
}
DRIFTABLE = ("speed", "flow", "discharge_pressure", "motor_current", "bearing_temp", "vibration")
DURATION = (36, 144)  # readings (6 h to 24 h at 10 min)
LABEL_COLUMNS = ["kind", "sensor", "starts_at", "ends_at", "magnitude", "magnitude_sigma"]
BEARING_LAG = pd.Timedelta("90min")  # the bearing's thermal time constant


@dataclass(frozen=True)
class PumpScenario:
    """A labelled asset: ``frame`` (with faults), ``clean`` (its twin without) and ``labels``.

    ``labels``: one row per fault: kind, sensor (the one whose relation breaks: the contributor
    a detector should rank first), starts_at, ends_at (exclusive), magnitude (sensor units) and
    magnitude_sigma (the same in ``RELATION_SIGMA``). ``ranges``: each sensor's normal range
    (min, max of the clean twin), inside which every faulty reading stays. The first
    ``warmup`` holds no fault.
    """

    frame: pd.DataFrame
    clean: pd.DataFrame
    labels: pd.DataFrame
    ranges: pd.DataFrame
    interval: pd.Timedelta
    warmup: pd.Timedelta

    @property
    def train(self) -> pd.DataFrame:
        """The fault-free warm-up part of the asset's history."""
        return self.frame[self.frame.index < self.frame.index[0] + self.warmup]


def _lag(x: np.ndarray, steps: float, initial: float) -> np.ndarray:
    """A first-order lag with time constant ``steps`` readings, started at ``initial``."""
    a = float(np.exp(-1.0 / steps))
    y: np.ndarray = lfilter([1.0 - a], [1.0, -a], x - initial) + initial
    return y


def duty_profile(rng: np.random.Generator, index: pd.DatetimeIndex, step: pd.Timedelta):
    """Relative speed in [0.55, 1]: a daily demand cycle plus set-point holds, ramped."""
    n = len(index)
    hours = (index.hour + index.minute / 60.0).to_numpy(dtype=np.float64)
    # two demand peaks (morning and evening), low at night
    daily = 0.1 * np.sin(2 * np.pi * (hours - 9.0) / 24.0) + 0.05 * np.sin(
        4 * np.pi * (hours - 6.0) / 24.0
    )
    holds = np.empty(n)
    i = 0
    while i < n:
        length = int(rng.integers(1, 9) * pd.Timedelta("1h") / step)
        holds[i : i + length] = rng.uniform(-0.15, 0.15)
        i += length
    target = np.clip(0.78 + daily + holds, 0.55, 1.0)
    ramp = pd.Timedelta("20min") / step
    return np.clip(_lag(target, max(ramp, 0.5), target[0]), 0.55, 1.0)


def simulate_pump(
    seed: int, index: pd.DatetimeIndex, step: pd.Timedelta
) -> tuple[pd.DataFrame, np.ndarray]:
    """The clean asset on ``index``: one column per sensor; also the relative speed ``r``."""
    rng = np.random.default_rng([seed, 0])
    n = len(index)
    r = duty_profile(rng, index, step)
    hours = (index.hour + index.minute / 60.0).to_numpy(dtype=np.float64)
    weather = _lag(rng.normal(0.0, 1.0, n), pd.Timedelta("12h") / step, 0.0) * 8.0
    ambient = 20.0 + 4.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0) + weather
    ar = float(np.exp(-step / pd.Timedelta("6h")))
    suction = 1.2 + lfilter([SUCTION_WANDER * np.sqrt(1 - ar**2)], [1.0, -ar], rng.normal(0, 1, n))
    heat = ambient + 12.0 + 28.0 * r**2
    bearing = _lag(heat, BEARING_LAG / step, heat[0])
    true = {
        "speed": 1480.0 * r,
        "flow": 120.0 * r,
        "discharge_pressure": suction + 6.0 * r**2,
        "motor_current": 18.0 + 62.0 * r**3,
        "bearing_temp": bearing,
        "vibration": 1.0 + 2.4 * r**2,
        "ambient_temp": ambient,
    }
    noise = np.random.default_rng([seed, 1]).normal(0.0, 1.0, (n, len(SENSORS)))
    data = {s: true[s] + NOISE[s] * noise[:, j] for j, s in enumerate(SENSORS)}
    return pd.DataFrame(data, index=index), r


def _fault_delta(
    kind: str, sensor: str, magnitude: float, length: int, step: pd.Timedelta, rng
) -> dict[str, np.ndarray]:
    """What a fault adds to each sensor it touches over its ``length`` readings."""
    t = np.arange(length, dtype=np.float64)
    onset = 1.0 - np.exp(-(t + 1) / (pd.Timedelta("1h") / step))  # a fault settles in ~1 h
    if kind == "drifting_sensor":
        return {sensor: magnitude * (t + 1) / length}
    if kind == "bearing_heat":
        return {sensor: magnitude * (1.0 - np.exp(-(t + 1) / (BEARING_LAG / step)))}
    if kind == "impeller_wear":  # less head and a little less flow at the same speed
        flow = -0.3 * abs(magnitude) / RELATION_SIGMA[sensor] * RELATION_SIGMA["flow"]
        return {sensor: magnitude * onset, "flow": flow * onset}
    if kind == "cavitation":  # rough running: more vibration, a noisier discharge
        extra = rng.normal(0.0, abs(magnitude) / 3.0, length)
        noisy = rng.normal(0.0, 2.0 * NOISE["discharge_pressure"], length)
        return {sensor: magnitude * onset + extra, "discharge_pressure": noisy}
    if kind == "sticking_valve":  # throttled: less flow, a little more discharge pressure
        press = 0.4 * abs(magnitude) / RELATION_SIGMA[sensor] * RELATION_SIGMA["discharge_pressure"]
        return {sensor: magnitude * onset, "discharge_pressure": press * onset}
    raise ValueError(f"unknown fault kind {kind!r}: expected one of {', '.join(FAULTS)}")


SIGN = {"impeller_wear": -1.0, "cavitation": 1.0, "bearing_heat": 1.0, "sticking_valve": -1.0}


def generate_pump_scenario(
    seed: int,
    *,
    days: float = 42,
    interval: str | pd.Timedelta = "10min",
    faults: tuple[str, ...] = FAULTS,
    magnitudes_sigma: tuple[float, float] = (5.0, 10.0),
    start="2024-01-01",
    warmup: str | pd.Timedelta = "14d",
    guard: str | pd.Timedelta = "12h",
    tries: int = 200,
) -> PumpScenario:
    """A seeded pump history: a fault-free ``warmup``, then one fault of each of ``faults`` in
    its own slot (shuffled), at least ``guard`` apart, each ``magnitudes_sigma`` (uniform) ×
    the faulty sensor's ``RELATION_SIGMA`` and placed where every touched sensor stays inside
    its normal range (up to ``tries`` starts are drawn; then the fault is left out, loudly)."""
    for kind in faults:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault kind {kind!r}: expected one of {', '.join(FAULTS)}")
    step = parse_duration(interval, field="interval")
    index = pd.date_range(
        to_utc(start), periods=int(pd.Timedelta(days=days) / step), freq=step, name="ts"
    )
    clean, _ = simulate_pump(seed, index, step)
    ranges = pd.DataFrame({"low": clean.min(), "high": clean.max()})
    rng = np.random.default_rng([seed, 2])
    first = int(np.ceil(parse_duration(warmup, field="warmup") / step))
    gap = int(np.ceil(parse_duration(guard, field="guard") / step))
    order = [faults[i] for i in rng.permutation(len(faults))]
    slot = (len(index) - first) // max(len(order), 1)
    values = clean.to_numpy(copy=True)
    col = {s: j for j, s in enumerate(SENSORS)}
    rows = []
    for i, kind in enumerate(order):
        sensor = FAULTY_SENSOR.get(kind) or DRIFTABLE[int(rng.integers(len(DRIFTABLE)))]
        mag_sigma = float(rng.uniform(*magnitudes_sigma))
        sign = SIGN.get(kind) or float(rng.choice([-1.0, 1.0]))
        length = int(rng.integers(DURATION[0], DURATION[1] + 1))
        room = slot - length - 2 * gap
        if room < 0:
            raise ValueError(f"{len(order)} faults do not fit in {days} days: give more days")
        for _ in range(tries):
            pos = first + i * slot + gap + int(rng.integers(0, room + 1))
            magnitude = sign * mag_sigma * RELATION_SIGMA[sensor]
            delta = _fault_delta(kind, sensor, magnitude, length, step, rng)
            span = slice(pos, pos + length)
            trial = {s: values[span, col[s]] + d for s, d in delta.items()}
            if all(
                ranges.at[s, "low"] <= v.min() and v.max() <= ranges.at[s, "high"]
                for s, v in trial.items()
            ):
                break
            sign = -sign if kind == "drifting_sensor" else sign
        else:
            raise ValueError(f"seed {seed}: no in-range place for {kind} on {sensor}")
        for s, v in trial.items():
            values[span, col[s]] = v
        starts_at = index[pos]
        rows.append((kind, sensor, starts_at, starts_at + length * step, magnitude, mag_sigma))
    frame = pd.DataFrame(values, index=index, columns=list(SENSORS))
    labels = pd.DataFrame(rows, columns=LABEL_COLUMNS).sort_values("starts_at")
    return PumpScenario(
        frame, clean, labels.reset_index(drop=True), ranges, step, pd.Timedelta(first * step)
    )
