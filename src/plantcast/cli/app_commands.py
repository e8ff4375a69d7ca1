"""The long-running surfaces: ``dashboard`` and ``demo``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from plantcast.cli.common import console, database_option, out, progress_bar
from plantcast.cli.group import cli

DEMO_HISTORY_DAYS = 28  # four weekly cycles: enough for daily and weekly seasonal models
DEMO_INTERVAL = "30min"
DEMO_API_PORT = 8000  # plantcast api, beside the page


def _dashboard_command(host: str, port: int) -> list[str]:
    # Started as a module, not imported: surfaces do not import each other (docs/architecture.md).
    return [sys.executable, "-m", "plantcast.dashboard", "--host", host, "--port", str(port)]


def _host_port(host, port):
    from plantcast.core.config import load_settings

    settings = load_settings()
    return host or settings.dashboard_host, port or settings.dashboard_port


@cli.command()
@database_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8501).")
def dashboard(database_url, host, port) -> None:
    """Serve the live dashboard (Streamlit)."""
    from plantcast.core.config import load_settings

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
@click.option(
    "--via",
    type=click.Choice(["db", "mqtt"]),
    default="db",
    show_default=True,
    help="db: the streamer writes to the database; mqtt: a simulated PLC publishes to the "
    "local broker (127.0.0.1:1883) and connect mqtt stores what it receives.",
)
def demo(database_url, host, port, tick, step, via) -> None:
    """Set up demo sensors, stream and watch them in the background, serve the dashboard."""
    if via == "mqtt":
        _require_local_broker()
    import pandas as pd

    from plantcast.core.config import load_settings
    from plantcast.ingest.backfill import backfill
    from plantcast.services.context import open_store
    from plantcast.signals.presets import DEMO_SENSORS

    host, port = _host_port(host, port)
    url = load_settings(database_url=database_url).database_url
    with open_store(url, init=True) as store:
        for name in DEMO_SENSORS:
            existing = {s.name: s for s in store.list_sensors()}.get(name)
            if existing is not None and store.last_reading(existing.id) is not None:
                continue
            with progress_bar(f"backfill {name}") as bar:
                r = backfill(
                    store,
                    name,
                    days=DEMO_HISTORY_DAYS,
                    interval=pd.Timedelta(DEMO_INTERVAL),
                    on_progress=bar,
                )
            out.print(f"{name}: backfilled {r.rows:,} readings ({DEMO_HISTORY_DAYS} days)")
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    sensor_args = [a for name in DEMO_SENSORS for a in ("--sensor", name)]
    feeds = _start_feeds(via, sensor_args, tick, step, env)
    streamer = feeds[-1]
    detector = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "detect", "--follow", *sensor_args], env=env
    )
    # Alert notifications go out while the demo runs (it idles if no destination is set up).
    sender = subprocess.Popen([sys.executable, "-m", "plantcast", "notify", "run"], env=env)
    # The REST API beside the page, which shows its address (PLANTCAST_API_URL).
    api_url = f"http://{host}:{DEMO_API_PORT}"
    api_cmd = [sys.executable, "-m", "plantcast", "api", "--host", host]
    api = subprocess.Popen([*api_cmd, "--port", str(DEMO_API_PORT)], env=env)
    env = {**env, "PLANTCAST_API_URL": api_url}
    web = subprocess.Popen(_dashboard_command(host, port), env=env)
    out.print(f"\n  plantcast demo: open http://{host}:{port}  (Ctrl-C stops everything)")
    out.print(f"  REST API: {api_url}/docs  (a key: plantcast apikey create --name me)\n")

    _supervise(web, feeds, (api, sender, detector))
    if streamer.returncode not in (0, -15, None) or web.returncode not in (0, -15, None):
        raise SystemExit(1)


def _supervise(web, feeds, others) -> None:
    """Wait while the page and the feeds run; on Ctrl-C or SIGTERM (or one of them ending),
    stop every child and wait for its clean stop."""

    def _on_term(signum, _frame):  # SIGTERM stops the children too, like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)
    try:
        while web.poll() is None and all(p.poll() is None for p in feeds):
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        # Stopping: a second Ctrl-C or SIGTERM (a process group signalled again, as `timeout`
        # does) must not cut the children's clean stop short with a traceback.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for proc in (web, *others, *feeds):
            if proc.poll() is None:
                proc.terminate()
        for proc in (web, *others, *feeds):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


# -- demo --via mqtt: the readings travel through a broker, as a plant's would --------------
DEMO_BROKER = ("127.0.0.1", 1883)


def _require_local_broker() -> None:
    import socket

    host, port = DEMO_BROKER
    try:
        socket.create_connection(DEMO_BROKER, timeout=1.0).close()
    except OSError:
        raise click.ClickException(
            f"demo --via mqtt needs an MQTT broker on {host}:{port} and none answers there; "
            "start one (e.g. apt-get install mosquitto) or run the demo without --via"
        ) from None
    out.print(
        f"demo via MQTT: simulate-plc mqtt → mqtt://{host}:{port} (plantcast/demo/<sensor>) "
        "→ connect mqtt → the database"
    )


def _start_feeds(via, sensor_args, tick, step, env) -> list[subprocess.Popen]:
    """What writes the demo's readings: the streamer, or (via MQTT) a connector and then,
    once it has subscribed, the simulated PLC publishing to the broker."""
    plantcast = [sys.executable, "-m", "plantcast"]
    if via != "mqtt":
        stream = [*plantcast, "stream", *sensor_args, "--tick", tick, "--step", step]
        return [subprocess.Popen(stream, env=env)]
    import threading

    broker = "mqtt://{}:{}".format(*DEMO_BROKER)
    connect = [*plantcast, "connect", "mqtt", "--broker", broker, "--topic", "plantcast/demo/#"]
    connect += ["--template", "plantcast/demo/{sensor}", "--client-id", "plantcast-demo"]
    connector = subprocess.Popen(
        connect, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    subscribed = threading.Event()

    def _relay() -> None:  # the connector's lines to our output; note when it has subscribed
        for line in connector.stdout:  # type: ignore[union-attr]  # stdout=PIPE: never None
            sys.stdout.write(line)
            sys.stdout.flush()
            if "subscribed to" in line:
                subscribed.set()
        subscribed.set()  # it exited: do not wait

    threading.Thread(target=_relay, daemon=True).start()
    subscribed.wait(60)
    publish = [*plantcast, "simulate-plc", "mqtt", "--broker", broker, *sensor_args]
    plc = subprocess.Popen([*publish, "--interval", tick, "--step", step], env=env)
    return [connector, plc]
