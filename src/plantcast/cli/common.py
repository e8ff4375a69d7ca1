"""Shared CLI pieces: the error boundary, option bundles, parameter types and progress bars."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Any

import click

from plantcast.core.errors import PlantcastError

# Importing the CLI imports click and no more: `plantcast --help` starts in a fraction of a
# second. pandas, rich, the store and the models are imported by the commands that use them.


class LazyConsole:
    """A rich ``Console`` made on first use (rich is imported then, not with the CLI)."""

    def __init__(self, **options) -> None:
        self._options, self._console = options, None

    def get(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


console = LazyConsole(stderr=True, soft_wrap=True)
# Piped output is not cut to 80 columns: tables stay whole in logs and files.
out = LazyConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


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

    def convert(self, value, param, ctx):
        import pandas as pd

        from plantcast.core.timeutil import parse_duration

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

    def convert(self, value, param, ctx):
        import pandas as pd

        if isinstance(value, pd.Timestamp):
            return value
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError):
            self.fail(f"cannot read {value!r} as a time (example: 2026-11-01T06:00Z)", param, ctx)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


TIMESTAMP = Timestamp()


class LazyChoice(click.Choice):
    """A choice whose values are computed when first needed: ``LazyChoice(available_models)``
    lists the model registry (which imports scikit-learn) only when a command parses or shows
    its options, not when the CLI is imported."""

    def __init__(self, load, case_sensitive: bool = True) -> None:
        self._choices: tuple[Any, ...] | None
        self._load, self._choices = load, None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple:  # type: ignore[override]  # computed on first use
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


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


def dask_options(what: str):
    """``--dask``, ``--workers N`` and ``--scheduler ADDRESS``: run ``what`` on Dask."""

    def decorate(func):
        for option in reversed(
            [
                click.option(
                    "--scheduler",
                    default=None,
                    help=f"{what} on the Dask cluster at this address (tcp://HOST:8786); "
                    "default $PLANTCAST_DASK_SCHEDULER when --dask is given.",
                ),
                click.option(
                    "--workers",
                    type=click.IntRange(min=1),
                    default=None,
                    help=f"{what} on a local Dask cluster of N processes.",
                ),
                click.option(
                    "--dask",
                    "use_dask",
                    is_flag=True,
                    help=f"{what} on Dask (one process per CPU).",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


def format_option(*choices: str):
    """``--format`` among ``choices`` (the first is the default), passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format: a table to read, JSON or CSV to process.",
    )


@contextmanager
def progress_bar(description: str, *, enabled: bool = True):
    """A rich progress bar on stderr; yields ``update(done, total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    target = console.get()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=target,
        transient=True,
        # off a terminal (a pipe, a log file) a transient bar leaves only an empty line behind
        disable=not enabled or not target.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, description_: str | None = None) -> None:
            progress.update(task, completed=done, total=total)
            if description_:
                progress.update(task, description=description_)

        yield update


def setup_logging(verbose: bool) -> None:
    """Plain text, or JSON lines under ``plantcast serve`` (plantcast.core.logs)."""
    from plantcast.core.logs import setup

    setup(verbose)
