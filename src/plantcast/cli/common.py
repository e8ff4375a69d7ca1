"""Shared CLI pieces: the error boundary, option bundles, parameter types and progress bars."""

from __future__ import annotations

import functools
import logging
import sys
from contextlib import contextmanager

import click
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import parse_duration

console = Console(stderr=True, soft_wrap=True)
# Piped output is not cut to 80 columns: tables stay whole in logs and files.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


class PlantcastGroup(click.Group):
    """A group whose commands turn PlantcastError into a one-line message and exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PlantcastError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


class Duration(click.ParamType):
    """A duration such as 30min, 2s, 24h or 7d."""

    name = "duration"

    def convert(self, value, param, ctx) -> pd.Timedelta:
        if isinstance(value, pd.Timedelta):
            return value
        try:
            return parse_duration(value, field=param.name if param else "duration")
        except PlantcastError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


class Timestamp(click.ParamType):
    """A point in time: RFC 3339 / ISO 8601 ('2026-11-01T06:00Z'); a naive time is UTC."""

    name = "timestamp"

    def convert(self, value, param, ctx) -> pd.Timestamp:
        if isinstance(value, pd.Timestamp):
            return value
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError):
            self.fail(f"cannot read {value!r} as a time (example: 2026-11-01T06:00Z)", param, ctx)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


TIMESTAMP = Timestamp()


def database_option(func):
    @click.option(
        "--database-url",
        envvar=None,
        default=None,
        help="Database URL (default: $PLANTCAST_DATABASE_URL, $DATABASE_URL, or "
        "sqlite:///data/plantcast.db).",
    )
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def format_option(*choices: str):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format.",
    )


@contextmanager
def progress_bar(description: str, *, enabled: bool = True):
    """A rich progress bar on stderr; yields ``update(done, total)``."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not enabled,
    )
    with progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, description_: str | None = None) -> None:
            progress.update(task, completed=done, total=total)
            if description_:
                progress.update(task, description=description_)

        yield update


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
