"""The options ``forecast`` and ``backtest`` share: one dataclass, one decorator, one spec."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from plantcast.cli.common import DURATION, dask_options
from plantcast.core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from plantcast.services.forecasting import ForecastSpec

# The default horizon follows the sensor's interval: a day of readings, but at least
# MIN_DEFAULT_STEPS (a weekly sensor forecasts 24 weeks, not a fraction of one reading) and at
# most MAX_DEFAULT_STEPS (a 1 s sensor forecasts 24 min, not 86,400 steps).
MIN_DEFAULT_STEPS = 24
MAX_DEFAULT_STEPS = 1_440


@dataclass(frozen=True)
class ForecastOptions:
    """What to forecast or backtest, and how: the command-line options both commands take."""

    sensors: tuple[str, ...]
    all_sensors: bool
    horizon: pd.Timedelta | None  # None: follow the sensor's interval (default_steps)
    periods: str | None
    harmonics: int
    smooth: int | None
    train_points: int | None
    use_dask: bool
    scheduler: str | None
    workers: int | None

    @property
    def on_dask(self) -> bool:
        return bool(self.use_dask or self.scheduler or self.workers)

    def sensor_names(self, store) -> list[str]:
        if self.all_sensors:
            return [s.name for s in store.list_sensors()]
        if not self.sensors:
            raise click.UsageError("name a sensor with --sensor (repeatable) or pass --all")
        return list(dict.fromkeys(self.sensors))

    def spec(self, store, sensor: str, **kw) -> ForecastSpec:
        """The service's spec for one sensor: its interval turns the horizon into steps."""
        from plantcast.services.forecasting import ForecastSpec
        from plantcast.services.seasons import sensor_periods_now

        found = store.get_sensor(sensor)
        chosen = _periods(self.periods)
        return ForecastSpec(
            horizon=horizon_steps(self.horizon, found.interval),
            periods=chosen or sensor_periods_now(store, found),
            harmonics=self.harmonics,
            smooth=self.smooth,
            max_train_points=self.train_points,
            **kw,
        )


def _periods(text: str | None) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else None


def default_steps(interval: pd.Timedelta) -> int:
    """Steps of the default horizon: a day of readings, clamped to [24, 1,440] readings (the
    rule `forecast refresh` and serve's forecasts job follow too)."""
    from plantcast.services.forecast_store import default_horizon_steps

    return default_horizon_steps(interval)


def horizon_steps(horizon: pd.Timedelta | None, interval: pd.Timedelta) -> int:
    """``--horizon`` in readings of ``interval`` (None: :func:`default_steps`)."""
    from plantcast.core.timeutil import format_duration

    if horizon is None:
        return default_steps(interval)
    steps = horizon / interval
    if steps < 1:
        raise InputError(
            f"horizon {format_duration(horizon)} is shorter than one reading interval "
            f"({format_duration(interval)}); give at least --horizon {format_duration(interval)}",
            field="horizon",
        )
    return math.floor(steps)


_FIELDS = ("sensors", "all_sensors", "horizon", "periods", "harmonics", "smooth", "train_points")
_DASK = ("use_dask", "scheduler", "workers")


def forecast_options(func):
    """Add the shared options to a command and pass them as one ``opts: ForecastOptions``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        opts = ForecastOptions(**{name: kwargs.pop(name) for name in (*_FIELDS, *_DASK)})
        return func(*args, opts=opts, **kwargs)

    options = [
        click.option(
            "--sensor",
            "sensors",
            multiple=True,
            help="Sensor name (repeatable; with --all, every sensor).",
        ),
        click.option("--all", "all_sensors", is_flag=True, help="Every sensor in the store."),
        click.option(
            "--horizon",
            type=DURATION,
            default=None,
            help="How far ahead (e.g. 1d, 12h, 8w). Default: a day of readings, at least "
            f"{MIN_DEFAULT_STEPS} and at most {MAX_DEFAULT_STEPS:,} (a weekly sensor: 24 weeks).",
        ),
        click.option(
            "--periods",
            default=None,
            help="Seasonal periods, e.g. 24h,7d (default: the sensor's).",
        ),
        click.option("--harmonics", type=click.IntRange(1, 20), default=3, show_default=True),
        click.option(
            "--smooth",
            type=click.IntRange(min=2),
            default=None,
            help="Fit on a rolling mean of N readings (default: raw readings).",
        ),
        click.option(
            "--train-points",
            type=click.IntRange(min=10),
            default=None,
            help="Latest readings to train on (default: each model's own, 2016; ets 1008).",
        ),
    ]
    decorated = dask_options("Fit")(wrapper)
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
