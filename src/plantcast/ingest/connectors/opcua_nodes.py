"""Which OPC UA nodes to read: node ids or browse paths, each with the sensor it feeds.

A spec is ``[SENSOR=]NODE`` where NODE is a node id (``ns=2;s=Line1.Temp``, ``i=2258``,
``nsu=urn:plant;s=Temp``) or a browse path from the Root folder (``Objects/2:Plant/2:Temp``;
an element without ``N:`` matches a child's name in any namespace). Without ``SENSOR=`` the
sensor is named after the node's browse name.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from plantcast.core.errors import InputError

_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$")
_SENSOR_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True)
class NodeSpec:
    text: str  # as given (for messages)
    node: str  # the node id or the browse path
    sensor: str | None = None  # explicit sensor name

    @property
    def is_node_id(self) -> bool:
        return bool(_NODE_ID.match(self.node))

    @property
    def path(self) -> list[str]:
        """The browse path's elements, Root first omitted."""
        parts = [p for p in self.node.strip("/").split("/") if p]
        if parts and parts[0] in ("Root", "0:Root"):
            parts = parts[1:]
        return parts


def parse_spec(text: str) -> NodeSpec:
    text = text.strip()
    sensor, node = None, text
    head, eq, tail = text.partition("=")
    # "ns=2;s=x" and "i=85" also contain '=': a sensor name never holds ';' and is not ns/i/...
    if eq and not _NODE_ID.match(text) and ";" not in head and "/" not in head:
        sensor, node = head.strip(), tail.strip()
        if not _SENSOR_NAME.match(sensor):
            raise InputError(f"invalid sensor name {sensor!r} in node spec {text!r}", field="node")
    if not node:
        raise InputError(f"empty node in spec {text!r}", field="node")
    return NodeSpec(text, node, sensor)


def read_specs(nodes: tuple[str, ...] | list[str], nodes_file: Path | None) -> list[NodeSpec]:
    """The ``--node`` options and the lines of ``--nodes-file`` (``#`` starts a comment)."""
    texts = list(nodes)
    if nodes_file is not None:
        try:
            lines = Path(nodes_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"cannot read nodes file {nodes_file}: {exc.strerror}") from None
        texts += [ln.split("#", 1)[0].strip() for ln in lines]
    specs = [parse_spec(t) for t in texts if t]
    if not specs:
        raise InputError("no nodes given: use --node (repeatable) or --nodes-file", field="node")
    return specs


async def resolve(client, specs: list[NodeSpec], endpoint: str) -> tuple[list, list[str]]:
    """The asyncua nodes of ``specs`` on a connected client, and the sensor each feeds."""
    from asyncua import ua

    nodes = []
    children_cache: dict = {}
    for spec in specs:
        if spec.is_node_id:
            try:
                nodes.append(client.get_node(ua.NodeId.from_string(spec.node)))
            except Exception:
                raise InputError(f"invalid node id {spec.node!r}", field="node") from None
        else:
            nodes.append(await _browse(client, spec, children_cache))
    # One request for every browse name: it names the sensors and proves the nodes exist.
    found = await client.read_attributes(nodes, ua.AttributeIds.BrowseName)
    names = []
    for spec, dv in zip(specs, found, strict=True):
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            raise InputError(
                f"node {spec.node!r} not found on {endpoint} ({dv.StatusCode.name})", field="node"
            )
        names.append(spec.sensor or dv.Value.Value.Name)
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise InputError(
            f"several nodes would feed sensor(s) {', '.join(dupes)}; name them with "
            "--node SENSOR=NODE",
            field="node",
        )
    return nodes, names


async def _browse(client, spec: NodeSpec, cache: dict):
    """Follow a browse path from the Root folder, one child at a time (cached per parent)."""
    from asyncua import ua

    node = client.nodes.root
    for element in spec.path:
        ns, _, name = element.rpartition(":")
        if node.nodeid not in cache:
            children = await node.get_children()
            names = await asyncio.gather(*(c.read_browse_name() for c in children))
            cache[node.nodeid] = list(zip(names, children, strict=True))
        found = [
            child
            for qn, child in cache[node.nodeid]
            if qn.Name == name and (not ns or (ns.isdigit() and qn.NamespaceIndex == int(ns)))
        ]
        if not found:
            raise InputError(f"browse path {spec.node!r}: no {element!r} there", field="node")
        node = found[0]
    if node.nodeid == ua.NodeId(ua.ObjectIds.RootFolder):  # type: ignore[arg-type]  # asyncua: NewType ints
        raise InputError(f"browse path {spec.node!r} names no node", field="node")
    return node
