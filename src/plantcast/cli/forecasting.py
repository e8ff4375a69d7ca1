"""Forecast commands: ``forecast`` one sensor, ``backtest`` its models with a report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plantcast.cli.common import (
    DURATION,
    LazyChoice,
    database_option,
    format_option,
    out,
    progress_bar,
)
from plantcast.cli.main import cli
from plantcast.core.errors import InputError

if TYPE_CHECKING:
    from plantcast.services.forecasting import ForecastSpec


def available_models() -> list[str]:
    # The registry imports scikit-learn: only the commands that list or fit models load it.
    from plantcast.forecast import available_models

    return available_models()


def _steps(horizon, interval) -> int:
    steps = horizon / interval
    if steps < 1:
        raise InputError(f"horizon {horizon} is shorter than one reading interval", field="horizon")
    return math.floor(steps)


def _spec_options(func):
    for option in reversed(
        [
            click.option("--sensor", required=True, help="Sensor name."),
            click.option("--horizon", type=DURATION, default="1d", show_default=True),
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
    ):
        func = option(func)
    return func


def _spec(store, sensor, horizon, periods, harmonics, smooth, train_points, **kw) -> ForecastSpec:
    from plantcast.services.context import sensor_periods
    from plantcast.services.forecasting import ForecastSpec

    found = store.get_sensor(sensor)
    chosen = tuple(p.strip() for p in periods.split(",") if p.strip()) if periods else None
    return ForecastSpec(
        horizon=_steps(horizon, found.interval),
        periods=chosen or sensor_periods(store, found.id),
        harmonics=harmonics,
        smooth=smooth,
        max_train_points=train_points,
        **kw,
    )


@cli.command()
@database_option
@_spec_options
@click.option(
    "--model", type=LazyChoice(available_models), default="fourier_linear", show_default=True
)
@format_option("table", "csv", "json")
def forecast(database_url, sensor, horizon, periods, harmonics, smooth, train_points, model, fmt):
    """Forecast a sensor with 80 % and 95 % conformal intervals."""
    from rich.table import Table

    from plantcast.services.context import open_store
    from plantcast.services.forecasting import forecast_sensor

    with open_store(database_url) as store:
        spec = _spec(store, sensor, horizon, periods, harmonics, smooth, train_points, model=model)
        result = forecast_sensor(store, sensor, spec)
    frame = result.frame.reset_index().rename(columns={"index": "ts"})
    frame["ts"] = frame["ts"].map(lambda t: t.isoformat())
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        payload = {
            "sensor": sensor,
            "model": model,
            "chosen": result.chosen,
            "scores": result.scores,  # auto: backtest MASE of each candidate and blend
            "forecast": frame.to_dict(orient="records"),
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        table = Table(*frame.columns)
        for row in frame.itertuples(index=False):
            table.add_row(row[0], *(f"{v:.3f}" for v in row[1:]))
        out.print(table)
        out.print(f"model {result.chosen}; fitted on {result.fitted_on:,} readings")


def parse_models(text: str) -> tuple[str, ...]:
    """A comma list of model names; ``all`` expands to every registered model but ``auto``
    (which backtests the others inside each fit). Duplicates are dropped, order kept."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            names += [m for m in available_models() if m != "auto"]
        elif part:
            names.append(part)
    if not names:
        raise InputError("no model given", field="models")
    return tuple(dict.fromkeys(names))


@cli.command("backtest")
@database_option
@_spec_options
@click.option(
    "--models",
    default="all",
    show_default=True,
    help="Comma-separated models; 'all' stands for every registered model but auto "
    "(e.g. all,auto).",
)
@click.option("--windows", type=click.IntRange(min=2), default=10, show_default=True)
@click.option(
    "--jobs",
    type=int,
    default=-1,
    show_default=True,
    help="Worker processes for the fits (-1: every core, 1: in this process).",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="HTML report path (default: reports/backtest-SENSOR.html).",
)
@format_option("table", "json")
def backtest_cmd(
    database_url,
    sensor,
    horizon,
    periods,
    harmonics,
    smooth,
    train_points,
    models,
    windows,
    jobs,
    report,
    fmt,
):
    """Backtest models on a sensor (rolling origin): metrics table and an HTML report."""
    from rich.table import Table

    from plantcast.services.backtest_report import write_backtest_report
    from plantcast.services.context import open_store
    from plantcast.services.forecasting import backtest_sensor, metrics_table

    names = parse_models(models)
    with open_store(database_url) as store:
        spec = _spec(
            store, sensor, horizon, periods, harmonics, smooth, train_points, windows=windows
        )
        with progress_bar("backtest") as bar:
            series, results, failed = backtest_sensor(
                store,
                sensor,
                names,
                spec,
                n_jobs=jobs,
                on_progress=lambda d, t, m: bar(d, t, f"backtest {m}"),
            )
    table = metrics_table(results)
    report = report or Path("reports") / f"backtest-{sensor}.html"
    write_backtest_report(results, series, report, title=f"Backtest of {sensor}")
    if fmt == "json":
        payload = {
            "sensor": sensor,
            "horizon": spec.horizon,
            "windows": windows,
            "models": table.to_dict(orient="index"),
            "failed": failed,
            "report": str(report),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    rich_table = Table("model", *table.columns)
    for name, row in table.iterrows():
        rich_table.add_row(name, *(f"{v:.3f}" for v in row))
    out.print(rich_table)
    for name, why in failed.items():
        out.print(f"[yellow]{name} skipped:[/] {why}")
    out.print(f"report: {report}")
