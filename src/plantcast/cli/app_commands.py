"""The long-running surfaces: ``dashboard`` and ``demo``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
import pandas as pd

from plantcast.cli.common import console, database_option, out, progress_bar
from plantcast.cli.main import cli
from plantcast.core.config import load_settings
from plantcast.ingest.backfill import backfill
from plantcast.services.context import open_store
from plantcast.signals.presets import DEMO_SENSORS

DEMO_HISTORY_DAYS = 28  # four weekly cycles: enough for daily and weekly seasonal models
DEMO_INTERVAL = pd.Timedelta("30min")


def _dashboard_command(host: str, port: int) -> list[str]:
    # Started as a module, not imported: surfaces do not import each other (DESIGN.md).
    return [sys.executable, "-m", "plantcast.dashboard", "--host", host, "--port", str(port)]


def _host_port(host, port):
    settings = load_settings()
    return host or settings.dashboard_host, port or settings.dashboard_port


@cli.command()
@database_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8501).")
def dashboard(database_url, host, port) -> None:
    """Serve the live dashboard (Streamlit)."""
    host, port = _host_port(host, port)
    url = load_settings(database_url=database_url).database_url
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    out.print(f"dashboard on http://{host}:{port}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server (it execs into Streamlit in turn): a SIGTERM sent to this process then
    # reaches Streamlit itself, which stops and frees the port. A child would be re-parented.
    command = _dashboard_command(host, port)
    os.execve(command[0], command, env)


@cli.command()
@database_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8501).")
@click.option("--tick", default="2s", show_default=True, help="Streamer tick.")
@click.option("--step", default="30min", show_default=True, help="Streamer step.")
def demo(database_url, host, port, tick, step) -> None:
    """Set up demo sensors, stream and watch them in the background, serve the dashboard."""
    host, port = _host_port(host, port)
    url = load_settings(database_url=database_url).database_url
    with open_store(url, init=True) as store:
        for name in DEMO_SENSORS:
            existing = {s.name: s for s in store.list_sensors()}.get(name)
            if existing is not None and store.last_reading(existing.id) is not None:
                continue
            with progress_bar(f"backfill {name}") as bar:
                r = backfill(
                    store, name, days=DEMO_HISTORY_DAYS, interval=DEMO_INTERVAL, on_progress=bar
                )
            out.print(f"{name}: backfilled {r.rows:,} readings ({DEMO_HISTORY_DAYS} days)")
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    sensor_args = [a for name in DEMO_SENSORS for a in ("--sensor", name)]
    streamer = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "stream", *sensor_args, "--tick", tick, "--step", step],
        env=env,
    )
    detector = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "detect", "--follow", *sensor_args], env=env
    )
    # Alert notifications go out while the demo runs (it idles if no destination is set up).
    sender = subprocess.Popen([sys.executable, "-m", "plantcast", "notify", "run"], env=env)
    web = subprocess.Popen(_dashboard_command(host, port), env=env)
    out.print(f"\n  plantcast demo: open http://{host}:{port}  (Ctrl-C stops everything)\n")

    def _on_term(signum, _frame):  # SIGTERM stops the children too, like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)
    try:
        while web.poll() is None and streamer.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for proc in (web, sender, detector, streamer):
            if proc.poll() is None:
                proc.terminate()
        for proc in (web, sender, detector, streamer):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if streamer.returncode not in (0, -15, None) or web.returncode not in (0, -15, None):
        raise SystemExit(1)
