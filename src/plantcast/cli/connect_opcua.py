"""``connect opcua`` and ``simulate-plc opcua``: OPC UA into the store, and a PLC serving."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from plantcast.cli.common import DURATION, console, database_option, out
from plantcast.cli.connect import batch_options, connect, simulate_plc

DEFAULT_ENDPOINT = "opc.tcp://127.0.0.1:4840"


def _quiet_asyncua() -> None:
    # asyncua warns about every unsecured endpoint and revised timeout; -v shows them.
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("asyncua").setLevel(logging.ERROR)


def _some(items, shown: int = 5) -> str:
    items = list(items)
    more = f", … ({len(items):,} in all)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _on_stop(stop) -> None:
    def _handler(signum, _frame):
        console.print(f"[yellow]{signal.Signals(signum).name}: stopping[/]")
        stop()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


@connect.command("opcua")
@database_option
@click.option("--endpoint", required=True, help="The server, opc.tcp://HOST:PORT[/path].")
@click.option(
    "--node",
    "nodes",
    multiple=True,
    help="[SENSOR=]NODE: a node id (ns=2;s=Line1.Temp) or a browse path "
    "(Objects/2:Plant/2:Temp); repeatable. Without SENSOR= the sensor is the browse name.",
)
@click.option(
    "--nodes-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file of node specs, one a line (# comments).",
)
@click.option(
    "--sampling-interval",
    type=DURATION,
    default="1s",
    show_default=True,
    help="How often the server samples each node (and publishes the changes).",
)
@batch_options("values", "the last write")
@click.option(
    "--start-timeout",
    type=DURATION,
    default="30s",
    show_default=True,
    help="Give up if the first connection does not succeed within this (later ones retry).",
)
@click.option(
    "--report-every",
    type=DURATION,
    default="10s",
    show_default=True,
    help="Print a progress line this often (0s: never).",
)
def connect_opcua(
    database_url,
    endpoint,
    nodes,
    nodes_file,
    sampling_interval,
    batch_size,
    flush,
    start_timeout,
    report_every,
) -> None:
    """Subscribe to OPC UA nodes and store their values (source timestamps kept).

    Bad values go to dead letters, Uncertain ones are stored and counted. Security and user
    come from PLANTCAST_OPCUA_SECURITY, PLANTCAST_OPCUA_USERNAME and PLANTCAST_OPCUA_PASSWORD.
    Reconnects and subscribes again when the server restarts; Ctrl-C flushes and exits 0.
    """
    from plantcast.core.config import load_settings
    from plantcast.ingest.connectors.opcua import OpcuaConnector, Security
    from plantcast.ingest.connectors.opcua_nodes import read_specs
    from plantcast.services.context import open_store

    _quiet_asyncua()
    if sampling_interval.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint="--sampling-interval")
    specs = read_specs(nodes, nodes_file)
    settings = load_settings(database_url=database_url)
    with open_store(settings.database_url, init=True) as store:
        connector = OpcuaConnector(
            store,
            endpoint,
            specs,
            sampling_interval=sampling_interval,
            batch_size=batch_size,
            flush_interval=flush.total_seconds(),
            security=Security.from_settings(settings),
            start_timeout=start_timeout.total_seconds(),
            say=lambda text: console.print(text, markup=False, highlight=False),
            report_every=report_every.total_seconds(),
        )
        _on_stop(connector.stop)
        console.print(f"connecting to {endpoint}: {len(specs)} node(s); Ctrl-C stops")
        s = connector.run()
    out.print(
        f"received {s.received:,} value(s): stored {s.stored:,} ({s.uncertain:,} uncertain), "
        f"{s.bad:,} to dead letters; {s.reconnects} reconnect(s)"
    )


@simulate_plc.command("opcua")
@click.option(
    "--database-url",
    default=None,
    help="Read injected events (and stored models) "
    "from this database (default: $PLANTCAST_DATABASE_URL if set; else none).",
)
@click.option("--endpoint", default=DEFAULT_ENDPOINT, show_default=True, help="Where to listen.")
@click.option(
    "--sensor", "sensors", multiple=True, help="Sensor (repeatable; default: the demo's)."
)
@click.option(
    "--interval", type=DURATION, default="1s", show_default=True, help="Real time a tick."
)
@click.option("--step", type=DURATION, default=None, help="Data time a tick (default: --interval).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N ticks.")
def simulate_plc_opcua(database_url, endpoint, sensors, interval, step, count) -> None:
    """Serve the demo sensors as an OPC UA server: ns=2;s=<sensor> under Objects/2:Plant."""
    import asyncio

    from plantcast.ingest.connectors.plc import open_demo_plc, plc_database
    from plantcast.ingest.connectors.plc_opcua import node_id, serve_opcua

    _quiet_asyncua()
    if interval.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    with open_demo_plc(plc_database(database_url), sensors, interval=interval, step=step) as plc:
        _on_stop(plc.stop)

        def _ready(ns: int) -> None:
            console.print(
                f"serving {len(plc.names)} sensor(s) on {endpoint} every "
                f"{interval.total_seconds():g}s: {_some(node_id(n, ns) for n in plc.names)}"
            )

        try:
            ticks = asyncio.run(serve_opcua(plc, endpoint, count=count, on_ready=_ready))
        except OSError as exc:
            raise click.ClickException(f"cannot serve on {endpoint}: {exc.strerror}") from None
    out.print(f"served {ticks:,} tick(s)")
