"""The synthetic sensor model: baseline + cycles + drift + hashed noise, a pure function of time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration, to_epoch_us, to_utc

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A counter-based hash (SplitMix64 finaliser): uint64 in, well-mixed uint64 out."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def hashed_uniform(seed: int, epoch_us: np.ndarray, stream: int = 0) -> np.ndarray:
    """Uniform [0, 1) numbers determined by (seed, stream, timestamp) alone."""
    key = np.uint64((seed * 0x100000001B3 + stream * 0x9E37) & 0xFFFFFFFFFFFFFFFF)
    x = _splitmix64(np.asarray(epoch_us, dtype=np.int64).view(np.uint64) ^ key)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def hashed_normal(seed: int, epoch_us: np.ndarray, stream: int = 0) -> np.ndarray:
    """Standard normal numbers determined by (seed, stream, timestamp) (Box–Muller)."""
    u1 = hashed_uniform(seed, epoch_us, 2 * stream + 1)
    u2 = hashed_uniform(seed, epoch_us, 2 * stream + 2)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class Cycle:
    """A sinusoid: ``amplitude * sin(2π (t - phase) / period)`` with t measured from the epoch."""

    amplitude: float
    period: pd.Timedelta
    phase: pd.Timedelta = pd.Timedelta(0)

    @classmethod
    def of(cls, amplitude: float, period: str, phase: str = "0s") -> Cycle:
        return cls(float(amplitude), parse_duration(period), parse_duration(phase))


def _daily() -> tuple[Cycle, ...]:
    return (Cycle.of(10.0, "24h"),)


@dataclass(frozen=True)
class SignalModel:
    """A seeded sensor model. The defaults are the reference demo's reservoir pressure.

    ``noise`` is the half-width of uniform noise (``noise_kind='uniform'``) or the standard
    deviation of Gaussian noise (``noise_kind='gaussian'``). ``drift_per_day`` is a linear trend
    measured from ``drift_origin``.
    """

    baseline: float = 100.0
    cycles: tuple[Cycle, ...] = field(default_factory=_daily)
    noise: float = 2.0
    noise_kind: str = "uniform"
    drift_per_day: float = 0.0
    drift_origin: pd.Timestamp = pd.Timestamp("2020-01-01", tz="UTC")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.noise_kind not in {"uniform", "gaussian"}:
            raise ValueError(f"noise_kind must be 'uniform' or 'gaussian', got {self.noise_kind!r}")
        if self.noise < 0:
            raise ValueError("noise must not be negative")

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise term (σ), the unit of injected event magnitudes."""
        return self.noise / np.sqrt(3.0) if self.noise_kind == "uniform" else self.noise

    def expected(self, index: pd.DatetimeIndex) -> np.ndarray:
        """The noiseless value at each timestamp."""
        us = to_epoch_us(index)
        out = np.full(len(us), self.baseline, dtype=np.float64)
        for c in self.cycles:
            period_us = c.period.value / 1_000
            phase_us = c.phase.value / 1_000
            out += c.amplitude * np.sin(2.0 * np.pi * ((us - phase_us) % period_us) / period_us)
        if self.drift_per_day:
            days = (us - to_epoch_us(pd.DatetimeIndex([self.drift_origin]))[0]) / 86_400e6
            out += self.drift_per_day * days
        return out

    def noise_at(self, index: pd.DatetimeIndex) -> np.ndarray:
        us = to_epoch_us(index)
        if self.noise == 0:
            return np.zeros(len(us))
        if self.noise_kind == "uniform":
            return (2.0 * hashed_uniform(self.seed, us) - 1.0) * self.noise
        return hashed_normal(self.seed, us) * self.noise

    def values(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Expected value plus noise: the reading this sensor reports at each timestamp."""
        return self.expected(index) + self.noise_at(index)


def generate_readings(
    model: SignalModel,
    start,
    end=None,
    *,
    periods: int | None = None,
    interval: str | pd.Timedelta = "30min",
) -> pd.Series:
    """Readings on a regular grid from ``start``: up to ``end`` (inclusive) or ``periods`` points.

    Returns a float ``Series`` named ``value`` on a tz-aware UTC ``DatetimeIndex`` named ``ts``.
    """
    step = parse_duration(interval, field="interval")
    if step <= pd.Timedelta(0):
        raise ValueError("interval must be positive")
    start = to_utc(start)
    if periods is None:
        if end is None:
            raise ValueError("give end or periods")
        idx = pd.date_range(start, to_utc(end), freq=step, name="ts")
    else:
        idx = pd.date_range(start, periods=periods, freq=step, name="ts")
    return pd.Series(model.values(idx), index=idx, name="value")


def model_to_dict(model: SignalModel) -> dict:
    """A JSON-ready description of a model (stored with a simulated sensor)."""
    return {
        "baseline": model.baseline,
        "cycles": [
            {"amplitude": c.amplitude, "period": str(c.period), "phase": str(c.phase)}
            for c in model.cycles
        ],
        "noise": model.noise,
        "noise_kind": model.noise_kind,
        "drift_per_day": model.drift_per_day,
        "drift_origin": model.drift_origin.isoformat(),
        "seed": model.seed,
    }


def model_from_dict(data: dict) -> SignalModel:
    """The inverse of :func:`model_to_dict`; missing keys take the demo's defaults."""
    defaults = SignalModel()
    cycles = data.get("cycles")
    return SignalModel(
        baseline=float(data.get("baseline", defaults.baseline)),
        cycles=defaults.cycles
        if cycles is None
        else tuple(Cycle.of(c["amplitude"], c["period"], c.get("phase", "0s")) for c in cycles),
        noise=float(data.get("noise", defaults.noise)),
        noise_kind=data.get("noise_kind", defaults.noise_kind),
        drift_per_day=float(data.get("drift_per_day", 0.0)),
        drift_origin=pd.Timestamp(data.get("drift_origin", defaults.drift_origin)),
        seed=int(data.get("seed", 0)),
    )
