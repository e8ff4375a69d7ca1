"""The ``plantcast`` entry point: the group with every command module attached, and the data
commands (init, backfill, stream, import).

``plantcast.cli.group`` owns the group; each command module imports it and attaches its
commands; this module imports them all (nothing imports this module back).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

# Importing a command module attaches its commands to the group.
from plantcast.cli import (  # noqa: F401
    anomalies,
    api_commands,
    app_commands,
    assets,
    catalog,
    connect,
    connect_mqtt,
    connect_opcua,
    forecast_store,
    forecasting,
    notify,
    seasons,
    serve_commands,
    silences,
    storage,
    users,
)
from plantcast.cli.common import DURATION, console, database_option, out, progress_bar
from plantcast.cli.group import cli

__all__ = ["cli"]


@cli.command()
@database_option
def init(database_url: str | None) -> None:
    """Create the tables (safe to run again)."""
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        out.print(f"initialized {store.url}")
        if store.needs_migration():
            console.print(
                "[yellow]readings is not partitioned by month: run `plantcast migrate`[/]"
            )


@cli.command()
@database_option
@click.option("--sensor", default="reservoir_pressure", show_default=True, help="Sensor name.")
@click.option("--days", type=float, default=3.0, show_default=True, help="Days of history.")
@click.option("--interval", type=DURATION, default="30min", show_default=True, help="Step.")
@click.option("--end", default=None, help="Last timestamp (ISO 8601; default: now).")
def backfill(database_url, sensor, days, interval, end) -> None:
    """Write a simulated sensor's history in bulk, ending now; adds nothing twice."""
    from plantcast.ingest.backfill import backfill as run_backfill
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store, progress_bar(f"backfill {sensor}") as bar:
        result = run_backfill(store, sensor, days=days, interval=interval, end=end, on_progress=bar)
    out.print(
        f"{result.sensor}: {result.rows:,} readings from {result.start:%Y-%m-%d %H:%M} to "
        f"{result.end:%Y-%m-%d %H:%M} UTC in {result.seconds:.2f} s ({result.rate:,.0f} rows/s)"
    )


@cli.command()
@database_option
@click.option(
    "--sensor",
    "sensors",
    multiple=True,
    help="Sensor to stream (repeatable). Default: every simulated sensor, or the demo's.",
)
@click.option("--tick", type=DURATION, default="2s", show_default=True, help="Real time per tick.")
@click.option("--step", type=DURATION, default="30min", show_default=True, help="Simulated step.")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N ticks (N readings per sensor).",
)
def stream(database_url, sensors, tick, step, count) -> None:
    """Write the next reading of each sensor every tick, one step of simulated time later.

    Survives database outages (readings wait in memory and are written exactly once when it
    returns). SIGINT/SIGTERM flush what is pending and exit 0. `--tick 0` runs flat out.
    """
    from plantcast.core.timeutil import format_duration
    from plantcast.ingest.stream import Streamer

    if step.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint="--step")
    stopping = threading.Event()
    streamer: Streamer | None = None

    def _stop(signum, _frame):
        console.print(f"[yellow]{signal.Signals(signum).name}: flushing and stopping[/]")
        stopping.set()
        if streamer is not None:
            streamer.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    opened = _open_when_reachable(database_url, sensors, stopping)
    if opened is None:
        return  # stopped before the database could be reached
    store, names = opened
    with store:
        streamer = Streamer(store, names, tick=tick.total_seconds(), step=step, count=count)
        if stopping.is_set():
            streamer.stop()
        console.print(
            f"streaming {', '.join(names)} every {format_duration(tick)} "
            f"(+{format_duration(step)} simulated); Ctrl-C stops"
        )
        stats = streamer.run()
    out.print(
        f"generated {stats.generated:,} readings, wrote {stats.written:,}; "
        f"{stats.outages} outage(s), {stats.failures} failed write attempt(s)"
    )


def _open_when_reachable(database_url, sensors, stopping: threading.Event):
    """The store (tables created) and the names to stream; a database that cannot be reached
    yet is waited for (0.5 s doubling to 30 s) until it can, or until ``stopping``."""
    from plantcast.core.errors import StoreUnavailable
    from plantcast.core.types import Source
    from plantcast.services.context import open_store
    from plantcast.signals.presets import DEMO_SENSORS

    delay = 0.5
    while not stopping.is_set():
        store = None
        try:
            store = open_store(database_url, init=True)
            names = (
                list(sensors)
                or [s.name for s in store.list_sensors(Source.SIMULATED)]
                or list(DEMO_SENSORS[:1])
            )
            return store, names
        except StoreUnavailable as exc:
            if store is not None:
                store.close()
            console.print(
                f"[yellow]database unavailable at start: {exc}; retrying in {delay:g} s[/]"
            )
            stopping.wait(delay)
            delay = min(2 * delay, 30.0)
    return None


@cli.command("import")
@database_option
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--sensor", help="Sensor to import into (created if missing); not with --wide.")
@click.option(
    "--wide",
    is_flag=True,
    help="One timestamp column and one column per tag: each numeric column becomes a sensor.",
)
@click.option("--prefix", default="", help="--wide: put before each column's name.")
@click.option("--asset", help="--wide: make (or extend) this asset of the imported sensors.")
@click.option(
    "--ts-col", default=None, help="Timestamp column [default: ts; --wide: by name, else first]."
)
@click.option("--value-col", default="value", show_default=True, help="Value column.")
@click.option(
    "--delimiter",
    default=None,
    help="Field separator, e.g. ';' or tab [default: ','; --wide: read from the first lines].",
)
@click.option(
    "--decimal",
    type=click.Choice([".", ","]),
    default=None,
    help="Decimal mark [default: '.'; --wide: read from the values]; the other one is refused.",
)
@click.option("--tz", default=None, help="Time zone of timestamps that carry none (e.g. UTC).")
@click.option(
    "--ts-format",
    default=None,
    help="strftime format of the times, e.g. '%d.%m.%Y %H:%M', or '%s' for seconds since "
    "1970 (UTC) [default: ISO 8601].",
)
@click.option("--unit", default="", help="Unit of the values, for a new sensor.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows and list the others (default: any bad row imports nothing).",
)
@click.option(
    "--max-problems",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Bad rows listed (all are counted).",
)
def import_(database_url, file, sensor, wide, prefix, asset, ts_col, value_col, **options) -> None:
    """Import readings from a CSV file: all rows or, on any error, none (see --skip-invalid).

    A long file (a timestamp and a value column) fills --sensor; a --wide one fills a sensor
    per numeric column, named by its header."""
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store
    from plantcast.services.seasons import refresh_seasons_of

    delimiter = _check_import_options(sensor, wide, prefix, asset, options.pop("delimiter"))
    with open_store(database_url, init=True) as store, progress_bar(f"import {file}") as bar:

        def on_progress(stage: str, done: int, total: int) -> None:
            bar(done, total, stage)

        if wide:
            from plantcast.services.imports import import_wide_file

            result, made = import_wide_file(
                store,
                file,
                asset=asset,
                actor=cli_actor(),
                delimiter=delimiter,
                ts_col=ts_col,
                prefix=prefix,
                on_progress=on_progress,
                **options,
            )
            imported = result.sensors
        else:
            from plantcast.ingest.csv_import import CsvSpec
            from plantcast.services.imports import import_file

            decimal = options.pop("decimal") or "."
            spec = CsvSpec(
                file,
                ts_col=ts_col or "ts",
                value_col=value_col,
                tz=options.pop("tz"),
                ts_format=options.pop("ts_format"),
                delimiter=delimiter or ",",
                decimal=decimal,
            )
            imported = [
                import_file(
                    store, spec, sensor, actor=cli_actor(), on_progress=on_progress, **options
                )
            ]
        known = {s.name: s for s in store.list_sensors()}
        found = refresh_seasons_of(store, [known[r.sensor] for r in imported])
    _report_import(imported, found, result if wide else None)
    if wide and made is not None:
        out.print(f"asset {made.name}: {', '.join(made.sensor_names)}", markup=False)


def _check_import_options(sensor, wide, prefix, asset, delimiter) -> str | None:
    """The options that go together; the delimiter as one character (tab: '\\t' or 'tab')."""
    if delimiter in {"\\t", "tab", "TAB"}:
        delimiter = "\t"
    if delimiter is not None and len(delimiter) != 1:
        raise click.BadParameter(f"{delimiter!r} is not one character", param_hint="--delimiter")
    if wide and sensor:
        raise click.UsageError("--wide names a sensor per column: leave out --sensor")
    if not wide and not sensor:
        raise click.UsageError("give --sensor NAME (or --wide for a file with a column per tag)")
    if not wide and (prefix or asset):
        raise click.UsageError("--prefix and --asset go with --wide")
    given = click.get_current_context().get_parameter_source("value_col")
    if wide and given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--wide imports every numeric column: leave out --value-col")
    return delimiter


LISTED_SENSORS = 20  # a wide import of more sensors is summed up, not listed line by line


def _report_import(imported, found, wide) -> None:
    many = len(imported) > LISTED_SENSORS
    for r in imported[:LISTED_SENSORS] if many else imported:
        skipped = r.duplicates_dropped
        note = f" ({skipped:,} exact duplicate rows skipped)" if skipped else ""
        out.print(
            f"{r.sensor}: imported {r.rows:,} readings from {r.start} to {r.end} "
            f"in {r.seconds:.2f} s{note}"
        )
    if many:
        rest = imported[LISTED_SENSORS:]
        rows = sum(r.rows for r in rest)
        out.print(
            f"… and {len(rest):,} more sensor(s): {rows:,} readings from "
            f"{min(r.start for r in rest)} to {max(r.end for r in rest)} "
            "(`plantcast sensors` lists them all)",
            markup=False,
        )
    if wide is not None:
        _wide_notes(wide)
    first = imported[0]
    if first.invalid_rows:
        shown = len(first.skipped)
        more = f", the first {shown} listed" if shown < first.invalid_rows else ""
        out.print(f"skipped {first.invalid_rows:,} invalid row(s){more}:", markup=False)
        for p in first.skipped:
            out.print(f"  {p}", markup=False, highlight=False)
    if many:
        _seasons_summary(found)
        return
    for name, periods in found.items():
        labels = ", ".join(s.label for s in periods) or "none found (models fit without a season)"
        out.print(f"seasons{f' of {name}' if wide else ''}: {labels}")


def _seasons_summary(found) -> None:
    """The seasons of many sensors, counted by what was found (`plantcast seasons` shows one)."""
    counts: dict[str, int] = {}
    for periods in found.values():
        label = ", ".join(s.label for s in periods) or "none found"
        counts[label] = counts.get(label, 0) + 1
    ranked = sorted(counts.items(), key=lambda c: -c[1])
    shown = "; ".join(f"{label} on {n:,} sensor(s)" for label, n in ranked)
    out.print(f"seasons: {shown}", markup=False)


def _wide_notes(result) -> None:
    """What a wide import read from the file and what it left out."""
    layout = result.layout
    out.print(
        f"{len(result.sensors)} sensor(s) from columns separated by {layout.delimiter!r}, "
        f"decimal mark {layout.decimal!r}, times in {layout.ts_col!r}",
        markup=False,
    )
    if layout.text_columns:
        out.print(f"left out text column(s): {', '.join(layout.text_columns)}", markup=False)
    if result.empty:
        out.print(f"no reading, no sensor: {', '.join(result.empty)}", markup=False)


if __name__ == "__main__":  # python -m plantcast.cli.main
    cli()
