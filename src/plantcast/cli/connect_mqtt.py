"""``connect mqtt`` and ``simulate-plc mqtt``: MQTT into the store, and a PLC publishing."""

from __future__ import annotations

from plantcast.cli.connect import connect, simulate_plc  # noqa: F401
