"""Live plant connectors: ``connect mqtt|opcua``, ``simulate-plc mqtt|opcua``, ``dead-letters``.

The subcommands live beside their protocol (``cli/connect_mqtt.py``, ``cli/connect_opcua.py``)
and attach themselves to the two groups defined here (``cli/main.py`` imports them).
"""

from __future__ import annotations

import json

import click

from plantcast.cli.common import DURATION, database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import listing_format, write_csv


def batch_options(items: str, since: str):
    """``--batch-size`` and ``--flush``: when a connector writes what it holds."""

    def decorate(func):
        func = click.option(
            "--flush",
            type=DURATION,
            default="200ms",
            show_default=True,
            help=f"…or this long after {since}.",
        )(func)
        return click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=5000,
            show_default=True,
            help=f"Write after this many {items}…",
        )(func)

    return decorate


@cli.group()
def connect() -> None:
    """Stream a plant's live tags into the store (MQTT or OPC UA)."""


@cli.group("simulate-plc")
def simulate_plc() -> None:
    """Publish the demo sensors like a plant would (to an MQTT broker, or as an OPC UA server)."""


@cli.command("dead-letters")
@database_option
@click.option("--source", type=click.Choice(["mqtt", "opcua"]), default=None, help="Only these.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@listing_format
def dead_letters(database_url, source, limit, fmt) -> None:
    """What connectors received but could not store: counted by kind, newest listed."""
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        counts = store.count_dead_letters(source=source)
        letters = store.list_dead_letters(source=source, limit=limit)
    total = sum(counts.values())
    if fmt == "csv":  # the letters, one a row (the counts are in the table and JSON forms)
        write_csv((_letter(d) for d in letters), LETTER_FIELDS)
        return
    if fmt == "json":
        payload = {
            "total": total,
            "by_kind": counts,
            "letters": [_letter(d) for d in letters],
        }
        out.print_json(json.dumps(payload))
        return
    out.print(f"{total:,} dead letter(s)")
    for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        out.print(f"  {n:>8,}  {kind}")
    for d in letters:
        preview = d.payload[:60].decode("utf-8", errors="replace")
        out.print(
            f"{d.received_at:%Y-%m-%d %H:%M:%S}  {d.source:<5} {d.topic}  {d.kind}: {d.reason}  "
            f"[{d.payload_size:,} B] {preview!r}"
        )


LETTER_FIELDS = (
    "id",
    "source",
    "topic",
    "kind",
    "reason",
    "received_at",
    "payload_size",
    "payload",
)


def _letter(d) -> dict:
    return {
        "id": d.id,
        "source": d.source,
        "topic": d.topic,
        "kind": d.kind,
        "reason": d.reason,
        "received_at": d.received_at.isoformat(),
        "payload_size": d.payload_size,
        "payload": d.payload.decode("utf-8", errors="replace"),
    }
