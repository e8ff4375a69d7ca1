"""Stored forecasts: ``forecast refresh`` (the scheduled refit), ``forecast show`` and ``list``."""

from __future__ import annotations

import json

import click

from plantcast.cli.common import (
    DURATION,
    LazyChoice,
    console,
    dask_options,
    database_option,
    out,
    progress_bar,
)
from plantcast.cli.forecasting import available_models, forecast
from plantcast.cli.output import emit, listing_format

STALE_AFTER = click.option(
    "--stale-after",
    type=DURATION,
    default="2h",
    show_default=True,
    help="A stored forecast older than this is called stale.",
)


@forecast.command("refresh")
@database_option
@click.option("--sensor", "sensors", multiple=True, help="Sensor name (repeatable; default all).")
@click.option("--model", type=LazyChoice(available_models), default="auto", show_default=True)
@click.option(
    "--horizon",
    type=DURATION,
    default=None,
    help="How far ahead [default: a day of each sensor's readings, at least 24 and at most "
    "1,440 of them (a weekly sensor: 24 weeks)].",
)
@click.option(
    "--points",
    type=click.IntRange(min=1),
    default=None,
    help="A stored forecast's steps at most [default: 60]: a sensor whose horizon holds more of "
    "its readings is forecast on their means over a coarser step (1 s readings, 10 min ahead: "
    "10 s steps).",
)
@click.option(
    "--max-age",
    type=DURATION,
    default="1h",
    show_default=True,
    help="Refit a sensor only when its stored forecast is at least this old (0s: all now).",
)
@click.option(
    "--reselect-every",
    type=DURATION,
    default="1d",
    show_default=True,
    help="auto chooses a sensor's model again when its choice is this old.",
)
@click.option(
    "--reselect-refits",
    type=click.IntRange(min=1),
    default=None,
    help="…or when its choice has served this many refits.",
)
@click.option(
    "--windows",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Backtest origins behind the bands and scores.",
)
@dask_options("Refit")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def refresh_cmd(
    database_url,
    sensors,
    model,
    horizon,
    points,
    max_age,
    reselect_every,
    reselect_refits,
    windows,
    use_dask,
    scheduler,
    workers,
    fmt,
):
    """Refit and store the forecast of every sensor whose stored one is older than --max-age
    (what `serve` runs on a schedule); auto keeps its choice for --reselect-every."""
    from plantcast.services.context import open_store
    from plantcast.services.forecast_store import refresh_forecasts

    dask = scheduler or workers or (True if use_dask else None)
    # init: a database made before the forecasts table gets it
    with open_store(database_url, init=True) as store, progress_bar("refresh") as bar:
        summary = refresh_forecasts(
            store,
            list(sensors) or None,
            horizon=horizon,
            model=model,
            max_age=max_age,
            dask=dask,
            on_progress=bar,
            reselect_every=reselect_every,
            reselect_refits=reselect_refits,
            windows=windows,
            **({} if points is None else {"points": points}),
        )
    if fmt == "json":
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        d = summary.as_dict()
        out.print(
            f"{d['refitted']} of {d['sensors']} sensors refitted ({d['reselected']} chose their "
            f"model anew), {d['not_due']} not due, {len(d['failed'])} failed, in "
            f"{d['seconds']:.1f} s{' on Dask' if d['on_dask'] else ''}"
        )
        for name, why in summary.failed.items():
            console.print(f"[red]{name}: not refitted:[/] {why}")
    if summary.failed:
        raise SystemExit(1)


@forecast.command("show")
@database_option
@click.option("--sensor", required=True, help="Sensor name.")
@STALE_AFTER
@listing_format
def show_cmd(database_url, sensor, stale_after, fmt):
    """Show a sensor's stored forecast (no fit), saying when it is stale."""
    from plantcast.services.context import open_store
    from plantcast.services.forecast_store import stored_forecast

    with open_store(database_url) as store:
        view = stored_forecast(store, sensor, stale_after=stale_after)
    frame = view.frame()
    if fmt == "json":
        row = view.row
        payload = {
            "sensor": row.sensor,
            "model": row.model,
            "chosen": row.chosen,
            "made_at": row.made_at.isoformat(),
            "trained_until": row.trained_until.isoformat(),
            "age_s": view.age.total_seconds(),
            "stale": view.stale,
            "backtest": view.scores,
            "forecast": json.loads(row.points),
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        rows = [{"ts": ts.isoformat(), **values} for ts, values in frame.iterrows()]
        columns = ["ts", *frame.columns]
        if fmt == "table":
            rows = [{k: _num(v) for k, v in r.items()} for r in rows]
        emit(rows, fmt, columns, empty="(no points)")
    if view.stale:
        console.print(f"[yellow]{view.note()}[/]")
    else:
        console.print(view.note(), style="dim")


def _num(value):
    return f"{value:.3f}" if isinstance(value, float) else value


@forecast.command("list")
@database_option
@STALE_AFTER
@listing_format
def list_cmd(database_url, stale_after, fmt):
    """List the stored forecasts: model, what auto chose, when made, how old, stale or not."""
    from plantcast.core.timeutil import format_duration
    from plantcast.services.context import open_store
    from plantcast.services.forecast_store import list_stored

    with open_store(database_url) as store:
        views = list_stored(store, stale_after=stale_after)
    rows = [
        {
            "sensor": v.row.sensor,
            "model": v.row.model,
            "chosen": v.row.chosen,
            "horizon_steps": v.row.horizon,
            "step_s": None if v.step is None else v.step.total_seconds(),
            "step": "" if v.step is None else format_duration(v.step),
            "made_at": v.row.made_at.isoformat(),
            "age": format_duration(v.age.floor("s")),
            "age_s": v.age.total_seconds(),
            "stale": v.stale,
            "mase": v.scores.get("mase"),
        }
        for v in views
    ]
    columns = ["sensor", "model", "chosen", "horizon_steps", "step", "made_at", "age", "stale"]
    columns.append("mase")
    if fmt != "table":
        columns[columns.index("age")] = "age_s"
        columns[columns.index("step")] = "step_s"
    rows = [{c: r[c] for c in columns} for r in rows]
    if fmt == "table":
        for r in rows:
            r["made_at"] = r["made_at"][:19].replace("T", " ")
            r["mase"] = None if r["mase"] is None else f"{r['mase']:.3f}"
            r["stale"] = "STALE" if r["stale"] else "no"
    emit(rows, fmt, columns, empty="no stored forecasts yet")
    if views:
        oldest = max(v.age for v in views)
        stale = sum(v.stale for v in views)
        first = sum(v.first for v in views)
        waiting = f"; {first} first forecast(s), auto not chosen yet" if first else ""
        console.print(
            f"{len(views)} stored forecast(s); the oldest made {format_duration(oldest.floor('s'))}"
            f" ago; {stale} stale (older than {format_duration(views[0].stale_after)}){waiting}",
            style="yellow" if stale else "dim",
        )
