"""What the store holds: ``sensors`` lists the sensors, ``readings`` exports a sensor's readings."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import click

from plantcast.cli.common import TIMESTAMP, console, database_option
from plantcast.cli.group import cli
from plantcast.cli.output import emit, listing_format, write_csv
from plantcast.core.types import Source

SENSOR_FIELDS = ("name", "unit", "source", "interval", "last_reading_at", "last_value")
# `readings` reads this many nominal intervals at a time: memory stays bounded by one page,
# whatever the span exported.
PAGE_READINGS = 10_000


@cli.command()
@database_option
@click.option(
    "--source",
    type=click.Choice([s.value for s in Source]),
    default=None,
    help="Only sensors of this source.",
)
@listing_format
def sensors(database_url, source, fmt) -> None:
    """List the sensors: name, unit, source, reading interval and last reading."""
    from plantcast.core.timeutil import format_duration
    from plantcast.services.context import open_store

    with open_store(database_url) as store:
        found = store.list_sensors(Source(source) if source else None)
        latest = store.last_readings([s.id for s in found])  # one statement, not one a sensor
        rows = []
        for s in found:
            last = latest.get(s.id)
            rows.append(
                {
                    "name": s.name,
                    "unit": s.unit,
                    "source": s.source.value,
                    "interval": format_duration(s.interval),
                    "last_reading_at": None if last is None else last[0],
                    "last_value": None if last is None else last[1],
                }
            )
    if fmt == "table":
        for r in rows:
            at = r["last_reading_at"]
            r["last_reading_at"] = None if at is None else f"{at:%Y-%m-%d %H:%M:%S}"
            r["last_value"] = None if at is None else f"{r['last_value']:g}"
    emit(
        rows, fmt, SENSOR_FIELDS, empty="no sensors (plantcast demo, import or backfill adds some)"
    )


@cli.command()
@database_option
@click.option("--sensor", required=True, help="Sensor name.")
@click.option(
    "--since",
    type=TIMESTAMP,
    default=None,
    help="First time to export (RFC 3339, e.g. 2026-11-01T06:00Z; default: the first reading).",
)
@click.option(
    "--until",
    type=TIMESTAMP,
    default=None,
    help="Export readings before this time (default: through the last reading).",
)
@listing_format
def readings(database_url, sensor, since, until, fmt) -> None:
    """Export a sensor's readings from --since until --until, oldest first, streamed page by
    page (memory does not grow with the span): CSV `ts,value`, a JSON list or a plain table.
    The count goes to stderr."""
    from plantcast.services.context import open_store

    if since is not None and until is not None and until <= since:
        raise click.BadParameter("must be after --since", param_hint="--until")
    with open_store(database_url) as store:
        found = store.get_sensor(sensor)
        pages = _pages(store, found, since, until)
        if fmt == "csv":
            n = write_csv(({"ts": t.isoformat(), "value": v} for t, v in pages), ("ts", "value"))
        elif fmt == "json":
            n = _write_json(pages)
        else:
            n = _write_lines(pages, found.unit)
    console.print(f"{sensor}: {n:,} reading(s)")


def _pages(store, sensor, since, until) -> Iterator[tuple]:
    """(ts, value) of ``since <= ts < until``, oldest first, one bounded read at a time."""
    import pandas as pd

    first = store.first_timestamp(sensor.id)
    last = store.last_timestamp(sensor.id)
    if first is None:
        return
    start = max(since, first) if since is not None else first
    end = until if until is not None else last + pd.Timedelta(microseconds=1)
    end = min(end, last + pd.Timedelta(microseconds=1))
    page = sensor.interval * PAGE_READINGS
    while start < end:
        stop = min(start + page, end)
        series = store.read_series(sensor.id, start, stop)
        yield from zip(series.index, series.to_numpy().tolist(), strict=True)
        start = stop


def _write_json(rows) -> int:
    """A JSON list of {"ts", "value"}, written as the rows come."""
    write, n = sys.stdout.write, 0
    write("[")
    for ts, value in rows:
        write(("," if n else "") + "\n  " + json.dumps({"ts": ts.isoformat(), "value": value}))
        n += 1
    write("\n]\n" if n else "]\n")
    sys.stdout.flush()
    return n


def _write_lines(rows, unit: str) -> int:
    """Aligned `time  value` lines, written as the rows come (a rich table would hold them)."""
    n = 0
    click.echo(f"{'ts (UTC)':<26} value{f' ({unit})' if unit else ''}")
    for ts, value in rows:
        fraction = f".{ts.microsecond:06d}" if ts.microsecond else ""
        click.echo(f"{ts:%Y-%m-%d %H:%M:%S}{fraction:<7}  {value:g}")
        n += 1
    return n
