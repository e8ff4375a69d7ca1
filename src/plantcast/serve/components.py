"""What ``serve`` runs for a config: one ``Component`` (a name and a command) per process."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from plantcast.serve.config import Mqtt, Opcua, PlantConfig

__all__ = ["Component", "components"]


@dataclass(frozen=True)
class Component:
    """A long-running ``python -m plantcast …`` command, restarted when it dies."""

    name: str
    args: tuple[str, ...]

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "plantcast", *self.args]


def components(config: PlantConfig, config_path: str | None = None) -> list[Component]:
    """Every process the config asks for, connectors first (they feed the others)."""
    found = [_mqtt(c) for c in config.connectors.mqtt]
    found += [_opcua(c) for c in config.connectors.opcua]
    d = config.detection
    if d.enabled:
        args = ["detect", "--follow", "--every", d.every]
        args += [a for name in d.sensors for a in ("--sensor", name)]
        args += _dask(d.dask, d.workers, d.scheduler)
        found.append(Component("detect", tuple(args)))
    n = config.notifications
    if n.enabled:
        found.append(Component("notify", ("notify", "run", "--poll", n.poll, "--keep", n.keep)))
    a = config.api
    if a.enabled:
        args = ["api", "--host", a.host, "--port", str(a.port), "--workers", str(a.workers)]
        found.append(Component("api", tuple(args)))
    p = config.dashboard
    if p.enabled:
        found.append(Component("dashboard", ("dashboard", "--host", p.host, "--port", str(p.port))))
    if config.jobs.enabled and config_path is not None:
        found.append(Component("jobs", ("jobs", "--config", config_path)))
    return found


def _mqtt(c: Mqtt) -> Component:
    args = ["connect", "mqtt", "--broker", c.broker, "--format", c.format]
    args += [a for topic in c.topics for a in ("--topic", topic)]
    optional = {
        "--template": c.template,
        "--name-format": c.name_format,
        "--mapping": c.mapping,
        "--unit": c.unit or None,
    }
    args += [a for flag, value in optional.items() if value is not None for a in (flag, value)]
    args += ["--value-field", c.value_field, "--ts-field", c.ts_field]
    args += ["--unknown-sensors", c.unknown_sensors, "--interval", c.interval]
    args += ["--client-id", c.client_id or f"plantcast-{c.name}"]
    args += ["--batch-size", str(c.batch_size), "--flush", c.flush]
    return Component(f"mqtt:{c.name}", tuple(args))


def _opcua(c: Opcua) -> Component:
    args = ["connect", "opcua", "--endpoint", c.endpoint]
    args += [a for node in c.nodes for a in ("--node", node)]
    if c.nodes_file:
        args += ["--nodes-file", c.nodes_file]
    args += ["--sampling-interval", c.sampling_interval]
    args += ["--batch-size", str(c.batch_size), "--flush", c.flush]
    return Component(f"opcua:{c.name}", tuple(args))


def _dask(dask: bool, workers: int | None, scheduler: str | None) -> list[str]:
    if scheduler:
        return ["--scheduler", scheduler]
    if workers:
        return ["--workers", str(workers)]
    return ["--dask"] if dask else []
