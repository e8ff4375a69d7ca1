"""``connect opcua`` and ``simulate-plc opcua``: OPC UA into the store, and a PLC serving."""

from __future__ import annotations

from plantcast.cli.connect import connect, simulate_plc  # noqa: F401
