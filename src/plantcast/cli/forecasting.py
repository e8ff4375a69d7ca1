"""Forecast commands: ``forecast`` sensors, ``backtest`` their models (one: with a report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from plantcast.cli.common import (
    LazyChoice,
    PlantcastGroup,
    console,
    database_option,
    out,
    progress_bar,
)
from plantcast.cli.forecast_options import ForecastOptions, forecast_options
from plantcast.cli.group import cli
from plantcast.cli.output import listing_format
from plantcast.core.errors import InputError


def available_models() -> list[str]:
    # The registry imports scikit-learn: only the commands that list or fit models load it.
    from plantcast.forecast import available_models

    return available_models()


@cli.group(cls=PlantcastGroup, invoke_without_command=True)
@database_option
@forecast_options
@click.option(
    "--model", type=LazyChoice(available_models), default="fourier_linear", show_default=True
)
@listing_format
@click.pass_context
def forecast(ctx, database_url, opts: ForecastOptions, model, fmt):
    """Forecast sensors with 80 % and 95 % conformal intervals (many: fitted on Dask with
    --dask, --workers or --scheduler); `forecast refresh|show|list` keep them stored."""
    if ctx.invoked_subcommand is not None:
        if opts.sensors or opts.all_sensors:
            raise click.UsageError(
                f"give --sensor or --all after `forecast {ctx.invoked_subcommand}`"
            )
        return
    from plantcast.services.context import open_store
    from plantcast.services.forecasting import forecast_sensor

    with open_store(database_url) as store:
        names = opts.sensor_names(store)

        def spec_of(name):
            return opts.spec(store, name, model=model)

        if len(names) == 1 and not opts.on_dask:
            results = {names[0]: forecast_sensor(store, names[0], spec_of(names[0]))}
        else:
            results = _many("forecast", store, names, spec_of, None, opts)
    failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
    done = {n: r for n, r in results.items() if not isinstance(r, Exception)}
    if done:
        FORECAST_RENDERERS[fmt](done, model, single=len(names) == 1)
    for name, result in done.items():
        if result.no_bands:
            from rich.markup import escape

            console.print(f"[yellow]{name}: no 80/95 % bands:[/] {escape(result.no_bands)}")
    _report_failures(failed, "not forecast")


def _forecasts_csv(done: dict, model: str, *, single: bool) -> None:
    import pandas as pd

    both = pd.concat([_frame(r).assign(sensor=n) for n, r in done.items()])
    both = both[["sensor", *[c for c in both.columns if c != "sensor"]]]
    click.echo((both.drop(columns="sensor") if single else both).to_csv(index=False), nl=False)


def _forecasts_json(done: dict, model: str, *, single: bool) -> None:
    payloads = [
        {
            "sensor": n,
            "model": model,
            "chosen": r.chosen,
            "scores": r.scores,  # auto: backtest MASE of each candidate and blend
            "forecast": _frame(r).to_dict(orient="records"),
        }
        for n, r in done.items()
    ]
    click.echo(json.dumps(payloads[0] if single else payloads, indent=2))


def _forecasts_table(done: dict, model: str, *, single: bool) -> None:
    from rich.table import Table

    if single:
        (result,) = done.values()
        frame = _frame(result)
        table = Table(*frame.columns)
        for row in frame.itertuples(index=False):
            table.add_row(row[0], *(f"{v:.3f}" for v in row[1:]))
        out.print(table)
        out.print(f"model {result.chosen}; fitted on {result.fitted_on:,} readings")
        return
    table = Table("sensor", "model", "first step", "mean", "80 % band", "last step", "mean")
    for n, r in done.items():
        f = r.frame
        band = (
            f"{f['lower_80'].iloc[0]:.3f} – {f['upper_80'].iloc[0]:.3f}" if "lower_80" in f else "-"
        )
        table.add_row(
            n,
            r.chosen,
            f"{f.index[0]:%Y-%m-%d %H:%M}",
            f"{f['mean'].iloc[0]:.3f}",
            band,
            f"{f.index[-1]:%Y-%m-%d %H:%M}",
            f"{f['mean'].iloc[-1]:.3f}",
        )
    out.print(table)


FORECAST_RENDERERS = {"table": _forecasts_table, "csv": _forecasts_csv, "json": _forecasts_json}


def _frame(result):
    """A forecast's frame with its times as RFC 3339 strings."""
    frame = result.frame.reset_index().rename(columns={"index": "ts"})
    frame["ts"] = frame["ts"].map(lambda t: t.isoformat())
    return frame


def _many(kind, store, names, spec_of, models, opts: ForecastOptions) -> dict:
    """Forecasts or backtests of many sensors: on Dask when asked, else one after another."""
    from plantcast.scale import backtest_many_sensors, connect, forecast_many
    from plantcast.services.forecasting import backtest_sensor, forecast_sensor

    with progress_bar(kind) as bar:
        if not opts.on_dask:
            results: dict[str, Any] = {}
            for i, name in enumerate(names):
                try:
                    spec = spec_of(name)
                    if kind == "forecast":
                        results[name] = forecast_sensor(store, name, spec)
                    else:
                        _, found, failed = backtest_sensor(store, name, models, spec, n_jobs=-1)
                        results[name] = (found, failed)
                except Exception as exc:  # that sensor's problem; the others go on
                    results[name] = exc
                bar(i + 1, len(names), name)
            return results
        with connect(opts.scheduler, opts.workers) as client:
            if kind == "forecast":
                return forecast_many(store, names, spec_of, client=client, on_progress=bar)
            return backtest_many_sensors(
                store, names, models, spec_of, client=client, on_progress=bar
            )


def _report_failures(failed: dict, what: str) -> None:
    for name, exc in failed.items():
        console.print(f"[red]{name}: {what}:[/] {exc}")
    if failed:
        sys.exit(1)


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
@forecast_options
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
@listing_format
def backtest_cmd(database_url, opts: ForecastOptions, models, windows, jobs, report, fmt):
    """Backtest models on sensors (rolling origin): metrics table and, for one sensor, an
    HTML report. Many sensors: each one's best model, fitted on Dask with --dask, --workers
    or --scheduler."""
    from plantcast.services.backtest_report import write_backtest_report
    from plantcast.services.context import open_store
    from plantcast.services.forecasting import backtest_sensor, metrics_table

    names = parse_models(models)
    with open_store(database_url) as store:
        sensors = opts.sensor_names(store)

        def spec_of(name):
            return opts.spec(store, name, windows=windows)

        if len(sensors) > 1 or opts.on_dask:
            results = _many("backtest", store, sensors, spec_of, names, opts)
            _print_many_backtests(results, fmt, windows)
            return
        sensor = sensors[0]
        spec = spec_of(sensor)
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
    if fmt == "csv":
        click.echo(table.rename_axis("model").reset_index().to_csv(index=False), nl=False)
    else:
        from rich.table import Table

        rich_table = Table("model", *table.columns)
        for name, row in table.iterrows():
            rich_table.add_row(name, *(f"{v:.3f}" for v in row))
        out.print(rich_table)
    for name, why in failed.items():
        console.print(f"[yellow]{name} skipped:[/] {why}")
    console.print(f"report: {report}")


def _print_many_backtests(results: dict, fmt: str, windows: int) -> None:
    """One row per sensor: its best model by MASE and that model's metrics."""
    from plantcast.services.forecasting import metrics_table

    failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
    done = {n: r for n, r in results.items() if not isinstance(r, Exception)}
    tables = {n: metrics_table(found) for n, (found, _) in done.items()}
    if fmt == "json":
        payload = {
            n: {
                "windows": windows,
                "best": tables[n].index[0],
                "models": tables[n].to_dict(orient="index"),
                "failed": skipped,
            }
            for n, (_, skipped) in done.items()
        }
        click.echo(
            json.dumps(
                {"sensors": payload, "not_backtested": {n: str(e) for n, e in failed.items()}},
                indent=2,
            )
        )
    elif fmt == "csv" and tables:
        import pandas as pd

        best = pd.DataFrame(
            [{"sensor": n, "model": t.index[0], **t.iloc[0].to_dict()} for n, t in tables.items()]
        )
        click.echo(best.to_csv(index=False), nl=False)
    elif fmt == "table":
        from rich.table import Table

        columns = ["mae", "mase", "coverage_80"]
        rich_table = Table("sensor", "best model", *columns)
        for n, table in tables.items():
            best = table.iloc[0]
            rich_table.add_row(
                n, table.index[0], *(f"{best[c]:.3f}" if c in best else "-" for c in columns)
            )
        out.print(rich_table)
    _report_failures(failed, "not backtested")
