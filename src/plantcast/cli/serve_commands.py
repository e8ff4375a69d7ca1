"""Running a plant: ``config check|example`` (and, as they land, ``serve``, ``status``,
``jobs``, ``backup``, ``restore``)."""

from __future__ import annotations

from pathlib import Path

import click

from plantcast.cli.common import database_option, format_option, out
from plantcast.cli.group import cli


@cli.group()
def config() -> None:
    """The plant's config file (TOML) that `plantcast serve --config` runs."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    """Check FILE (with the environment's overrides) and list what serve would run.

    Every problem is listed with its key and line; exit 1 if there is one."""
    from plantcast.serve.components import components
    from plantcast.serve.config import load_config

    plant = load_config(file)
    out.print(f"{file}: ok", markup=False)
    out.print(f"database: {_safe_url(plant.database.url)}", markup=False)
    for component in components(plant, str(file)):
        out.print(f"  {component.name}: plantcast {' '.join(component.args)}", markup=False)


@config.command("example")
def config_example() -> None:
    """Print a commented example config (`plantcast config example > plant.toml`)."""
    from plantcast.serve.example import EXAMPLE

    click.echo(EXAMPLE, nl=False)


def _safe_url(url: str) -> str:
    """The URL with any password hidden."""
    import re

    return re.sub(r"(://[^/@:]*:)[^/@]+@", r"\1***@", url)


@cli.command()
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The plant's TOML file (`plantcast config example`).",
)
def serve(config_file: Path) -> None:
    """Run the plant the config declares: each component its own process, restarted with
    backoff when it dies; SIGTERM or Ctrl-C stops them all (each flushes first).

    `plantcast status` shows each component's state, restarts, last error and lags."""
    import os

    from plantcast.core import logs
    from plantcast.serve.config import load_config
    from plantcast.serve.runner import serve as run

    plant = load_config(config_file)
    os.environ[logs.FORMAT_ENV] = plant.serve.log_format
    os.environ.setdefault(logs.COMPONENT_ENV, "serve")
    logs.setup(verbose=True)
    run(plant, config_file)


@cli.command()
@database_option
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Read the database from this config file (with its environment overrides).",
)
@format_option("table", "json")
def status(database_url, config_file, fmt) -> None:
    """What `plantcast serve` runs: each component's state, restarts and last error, the
    scheduled jobs' last runs, and the lags (newest reading age, detection lag, outbox)."""
    from plantcast.services.context import open_store
    from plantcast.services.serve_status import read_status

    if config_file is not None and database_url is None:
        from plantcast.serve.config import load_config

        database_url = load_config(config_file).database.url
    with open_store(database_url, init=True) as store:
        report = read_status(store)
    if fmt == "json":
        from plantcast.cli.output import echo_json

        echo_json(report)
        return
    _print_status(report)


def _print_status(report: dict) -> None:
    from plantcast.cli.output import print_table

    serve = report["serve"]
    out.print(f"serve: {serve['state']} ({serve['note']})", markup=False)
    columns = ["component", "state", "pid", "restarts", "up", "last error"]
    rows = [
        {
            "component": c["name"],
            "state": c["state"],
            "pid": c["pid"],
            "restarts": c["restarts"],
            "up": c["up"],
            "last error": c["last_error"],
        }
        for c in report["components"]
    ]
    print_table(rows, columns, empty="no component has run (start `plantcast serve`)")
    jobs = [
        {
            "job": j["name"],
            "last run": j["last_finished_at"],
            "outcome": j["last_outcome"],
            "took": None if j["last_seconds"] is None else f"{j['last_seconds']:.1f} s",
            "runs": j["runs"],
            "failures": j["failures"],
            "detail": j["last_detail"],
        }
        for j in report["jobs"]
    ]
    if jobs:
        print_table(jobs, list(jobs[0]), empty="")
    lags = report["lags"]
    out.print(
        "lags: newest reading {} old, detection lag {} (p95 {}), outbox {} undelivered "
        "(oldest {}), {} open alert(s), {} reading(s) in the last minute, {} dead letter(s)".format(
            _age(lags["newest_reading_age_s"]),
            _age(lags["detection_lag_s"]),
            _age(lags["detection_lag_p95_s"]),
            lags["outbox_depth"],
            _age(lags["outbox_oldest_age_s"]),
            lags["open_alerts"],
            lags["readings_last_minute"],
            lags["dead_letters"],
        ),
        markup=False,
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    import pandas as pd

    from plantcast.core.timeutil import format_duration

    return format_duration(pd.Timedelta(seconds=round(seconds)))


@cli.command()
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The plant's TOML file: which jobs, how often.",
)
@click.option(
    "--run",
    "run_now",
    multiple=True,
    help="Run this job once now, print its outcome and exit (repeatable): "
    "partitions, retention, seasons, forecasts.",
)
def jobs(config_file: Path, run_now: tuple[str, ...]) -> None:
    """Run the scheduled jobs (retention, seasons, partitions ahead, forecast refits) until
    SIGTERM; `serve` runs this as its `jobs` component. Each run's outcome is in `status`."""
    import os
    import signal
    import threading

    from plantcast.serve.config import load_config
    from plantcast.serve.jobs import plan, run_job, run_scheduler
    from plantcast.services.context import open_store

    plant = load_config(config_file)
    planned = {j.name: j for j in plan(plant)}
    unknown = [n for n in run_now if n not in planned]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: the jobs are {', '.join(planned)}", param_hint="--run"
        )
    with open_store(plant.database.url, init=True) as store:
        if run_now:
            failed = False
            for name in run_now:
                state = run_job(store, plant, planned[name])
                out.print(f"{name}: {state.last_outcome}: {state.last_detail}", markup=False)
                failed |= state.last_outcome != "ok"
            raise SystemExit(1 if failed else 0)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if plant.jobs.nice:
            os.nice(plant.jobs.nice)  # refits yield the CPU to ingest and detection
        run_scheduler(store, plant, stop)


@cli.command()
@database_option
@click.option(
    "--to", "to", required=True, type=click.Path(path_type=Path), help="The backup file to write."
)
def backup(database_url, to: Path) -> None:
    """Back up the whole database while it runs: pg_dump (custom format) on PostgreSQL,
    SQLite's online backup API on SQLite. Prints the rows of each table it holds."""
    from plantcast.services.context import open_store
    from plantcast.store.backup import backup as run_backup

    with open_store(database_url) as store:
        result = run_backup(store, to)
    _report_backup("backed up", result)


@cli.command()
@database_option
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(path_type=Path),
    help="A file `plantcast backup` wrote (of the same engine).",
)
@click.option("--force", is_flag=True, help="Replace a database that already holds readings.")
def restore(database_url, source: Path, force: bool) -> None:
    """Restore a backup into the database (stop `serve` first): refused if the database
    already holds readings, unless --force. Prints the rows of each table restored."""
    from plantcast.services.context import open_store
    from plantcast.store.backup import restore as run_restore

    with open_store(database_url, init=True) as store:
        result = run_restore(store, source, force=force)
    _report_backup("restored", result)


def _report_backup(verb: str, result) -> None:
    counts = result.counts
    out.print(
        f"{verb} {counts.get('readings', 0):,} readings of {counts.get('sensors', 0):,} "
        f"sensor(s), {counts.get('alerts', 0):,} alert(s) ({result.engine}, "
        f"{result.bytes / 1e6:,.1f} MB) {'to' if verb == 'backed up' else 'from'} "
        f"{result.path} in {result.seconds:.1f} s",
        markup=False,
    )
    others = ", ".join(f"{name} {n:,}" for name, n in counts.items() if n)
    out.print(f"rows: {others}", markup=False)
