"""``simulate-plc opcua``: the simulated PLC served as an OPC UA server (asyncua).

Each sensor is a Double variable ``ns=2;s=<sensor>`` under ``Objects/2:Plant``; every tick
its value is written with the reading's time as the source timestamp and a Good status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from plantcast.ingest.connectors.plc import SimulatedPlc

log = logging.getLogger(__name__)

NAMESPACE = "urn:plantcast:simulated-plc"
FOLDER = "Plant"


def node_id(sensor: str, ns: int = 2) -> str:
    return f"ns={ns};s={sensor}"


def browse_path(sensor: str, ns: int = 2) -> str:
    return f"Objects/{ns}:{FOLDER}/{ns}:{sensor}"


async def serve_opcua(
    plc: SimulatedPlc,
    endpoint: str,
    *,
    count: int | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Serve the PLC's sensors at ``endpoint`` until ``plc.stop()`` (or ``count`` ticks);
    ``on_ready(namespace index)`` is called once the server listens. Returns the ticks."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name("plantcast simulated PLC")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(NAMESPACE)
    folder = await server.nodes.objects.add_folder(ua.NodeId(FOLDER, ns), f"{ns}:{FOLDER}")  # type: ignore[arg-type]  # asyncua: NewType ints
    variables = {}
    for name in plc.names:
        var = await folder.add_variable(
            ua.NodeId(name, ns),  # type: ignore[arg-type]  # asyncua: NewType ints
            f"{ns}:{name}",
            0.0,
            ua.VariantType.Double,
        )
        variables[name] = var.nodeid
    ticks = 0
    async with server:
        if on_ready is not None:
            on_ready(ns)
        while count is None or ticks < count:
            if await asyncio.to_thread(plc.stop_event.wait, plc.pause()):
                break
            readings = plc.tick() if len(plc.tags) < 100 else await asyncio.to_thread(plc.tick)
            now = dt.datetime.now(dt.UTC)
            for r in readings:
                dv = ua.DataValue(
                    ua.Variant(r.value, ua.VariantType.Double),
                    ua.StatusCode(ua.StatusCodes.Good),  # type: ignore[arg-type]  # asyncua: NewType ints
                    SourceTimestamp=r.ts.to_pydatetime(),
                    ServerTimestamp=now,  # type: ignore[arg-type]  # asyncua: a datetime is its DateTime
                )
                await server.write_attribute_value(variables[r.sensor], dv)
            ticks += 1
    return ticks
