"""``simulate-plc mqtt``: the simulated PLC publishing its readings to an MQTT broker.

Each reading is one QoS 1 message on ``{prefix}/{sensor}`` (``plantcast/demo/reservoir_pressure``)
with the JSON payload ``connect mqtt`` reads: ``{"ts": "<RFC 3339>", "value": <float>}``. paho
reconnects by itself when the broker restarts; messages published meanwhile wait in its queue.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from plantcast.core.errors import PlantcastError
from plantcast.ingest.connectors.mqtt import Broker
from plantcast.ingest.connectors.plc import PlcReading

log = logging.getLogger(__name__)

TOPIC_PREFIX = "plantcast/demo"


def payload(reading: PlcReading) -> bytes:
    ts = reading.ts.tz_convert("UTC").isoformat().replace("+00:00", "Z")
    return json.dumps({"ts": ts, "value": reading.value}).encode()


@dataclass
class PublishStats:
    published: int = 0  # handed to the client
    acknowledged: int = 0  # PUBACK received from the broker
    disconnects: int = 0


class MqttPublisher:
    """A paho 2.x client (``CallbackAPIVersion.VERSION2``) publishing readings at QoS 1."""

    def __init__(
        self,
        broker: Broker,
        *,
        prefix: str = TOPIC_PREFIX,
        client_id: str | None = None,
        qos: int = 1,
    ) -> None:
        self.broker, self.prefix, self.qos = broker, prefix.rstrip("/"), qos
        self.client_id = client_id or f"plantcast-plc-{os.getpid()}"
        self.stats = PublishStats()
        self._connected = threading.Event()
        self._client: Any = None  # a paho Client once started (paho is imported lazily)
        self._closing = False

    def connect(self, timeout: float = 5.0) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file)
        client.max_queued_messages_set(0)  # unbounded: nothing dropped while the broker is away
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(0.2, 10)  # type: ignore[arg-type]  # paho takes seconds as floats
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        try:  # the first connection at once, so that a wrong address says so at once
            client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError):
            raise PlantcastError(f"no MQTT broker answers at {self.broker}") from None
        client.loop_start()  # from here on paho reconnects by itself
        if not self._connected.wait(timeout):
            self.close(timeout=0)
            raise PlantcastError(f"no MQTT broker answers at {self.broker}")

    def publish(self, readings: list[PlcReading]) -> None:
        for r in readings:
            self._client.publish(f"{self.prefix}/{r.sensor}", payload(r), qos=self.qos)
        self.stats.published += len(readings)

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for the broker to acknowledge what was published; stop."""
        if self._client is None:
            return
        deadline = time.monotonic() + timeout
        while self.stats.acknowledged < self.stats.published and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.stats.acknowledged < self.stats.published:
            log.warning(
                "%d message(s) not acknowledged by %s",
                self.stats.published - self.stats.acknowledged,
                self.broker,
            )
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None

    # -- paho callbacks (its network thread) ----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the connection: %s", self.broker, reason_code)
            return
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._closing:
            self.stats.disconnects += 1
            log.warning("disconnected from %s (%s); reconnecting", self.broker, reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.stats.acknowledged += 1
