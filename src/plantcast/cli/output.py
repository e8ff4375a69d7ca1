"""Listing output in the three formats every listing command takes: table, json and csv."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import click

from plantcast.cli.common import format_option, out

FORMATS = ("table", "json", "csv")


# ``--format table|json|csv`` (passed as ``fmt``), the option of every listing command.
listing_format = format_option(*FORMATS)


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def echo_json(payload) -> None:
    """JSON on stdout; datetimes as RFC 3339 strings."""
    click.echo(json.dumps(payload, indent=2, default=_plain))


def write_csv(rows: Iterable[Mapping], columns: Sequence[str]) -> int:
    """Rows as CSV on stdout, a header first, one row at a time; returns how many."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        n += 1
    sys.stdout.flush()
    return n


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(_plain(value))


def print_table(rows: Sequence[Mapping], columns: Sequence[str], *, empty: str) -> None:
    """Rows as a rich table on stdout (``empty`` when there are none); values as given."""
    if not rows:
        out.print(empty)
        return
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


def emit(rows: Sequence[Mapping], fmt: str, columns: Sequence[str], *, empty: str) -> None:
    """A listing in ``fmt``: a JSON list, CSV with a header, or a table."""
    if fmt == "json":
        echo_json([dict(r) for r in rows])
    elif fmt == "csv":
        write_csv(rows, columns)
    else:
        print_table(rows, columns, empty=empty)
