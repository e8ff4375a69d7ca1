"""connect mqtt's settings: the broker's address and credentials, the options, the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError
from plantcast.ingest.connectors.payloads import JsonFields
from plantcast.ingest.connectors.topics import TopicMap

FORMATS = ("auto", "json", "number", "sparkplug")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str, **credentials) -> Broker:
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.username or parts.password:
            raise InputError(
                "put the broker's user and password in PLANTCAST_MQTT_USERNAME and "
                "PLANTCAST_MQTT_PASSWORD, not in the URL",
                field="broker",
            )
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise InputError(
                f"cannot read {url!r} as a broker: use mqtt://HOST:PORT or mqtts://HOST:PORT",
                field="broker",
            )
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise InputError(f"bad port in {url!r}", field="broker") from None
        if not parts.hostname:
            raise InputError(f"no host in {url!r}", field="broker")
        return cls(parts.hostname, port, tls, **credentials)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Options:
    topics: tuple[str, ...]
    fmt: str = "auto"
    topic_map: TopicMap = field(default_factory=TopicMap)
    json_fields: JsonFields = field(default_factory=JsonFields)
    create_sensors: bool = True
    interval: pd.Timedelta = pd.Timedelta("1s")
    unit: str = ""
    client_id: str = "plantcast"
    mqtt_version: str = "5"
    session_expiry_s: int = 7 * 86400
    batch_size: int = 5000
    flush_ms: int = 200
    max_inflight: int = 10000
    max_payload: int = 65536
    keepalive: int = 30


@dataclass
class Stats:
    messages: int = 0
    readings: int = 0
    dead_letters: int = 0
    historical: int = 0
    batches: int = 0
    last_commit_us: int = 0
    # A sample of readings' age when committed (commit time - reading time, µs): for live
    # data stamped at the source, how far the store lags behind the plant. Spread over the
    # whole run: past the cap, every other sample is dropped and half as many are taken.
    ages_us: list[np.ndarray] = field(default_factory=list)
    _sampled: int = 0
    _stride: int = 1

    def add_ages(self, ages_us: np.ndarray, cap: int = 200_000) -> None:
        take = ages_us[:: self._stride]
        if not len(take):
            return
        self.ages_us.append(take)
        self._sampled += len(take)
        if self._sampled > cap:
            kept = np.concatenate(self.ages_us)[::2]
            self.ages_us, self._sampled, self._stride = [kept], len(kept), self._stride * 2

    def age_percentiles(self) -> tuple[float, float] | None:
        """p50 and p95 of the sampled ages, in seconds (None before any reading)."""
        if not self.ages_us:
            return None
        p50, p95 = np.percentile(np.concatenate(self.ages_us), [50, 95]) / 1e6
        return float(p50), float(p95)

    def reset_ages(self) -> None:
        self.ages_us, self._sampled, self._stride = [], 0, 1
