"""``connect mqtt`` and ``simulate-plc mqtt``: MQTT into the store, and a PLC publishing."""

from __future__ import annotations

import click

from plantcast.cli.common import DURATION, console, database_option
from plantcast.cli.connect import batch_options, connect, simulate_plc


@connect.command("mqtt")
@database_option
@click.option(
    "--broker",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS. User and password: "
    "$PLANTCAST_MQTT_USERNAME, $PLANTCAST_MQTT_PASSWORD; CA bundle: $PLANTCAST_MQTT_CA_FILE.",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    required=True,
    help="A topic filter to subscribe to at QoS 1 (repeatable; + and # allowed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "json", "number", "sparkplug"]),
    default="auto",
    show_default=True,
    help="Payload format. auto: Sparkplug B under spBv1.0/, JSON when it starts with {, "
    "else a plain number.",
)
@click.option(
    "--template",
    default=None,
    help="Map topics to sensors, e.g. plant/{area}/{sensor} (the sensor is {sensor}, or the "
    "fields joined by dots; see --name-format). Default: the topic is the sensor's name.",
)
@click.option(
    "--name-format", default=None, help="Sensor name from template fields: {area}_{sensor}."
)
@click.option(
    "--mapping",
    type=click.Path(dir_okay=False),
    default=None,
    help="A file mapping topics (or Sparkplug group/node[/device]/metric) to sensors: JSON "
    '{"topic": "sensor"} or {"topic": {"sensor": "p1", "unit": "bar"}}, or CSV topic,sensor'
    "[,unit]. Topics it does not list go to dead letters.",
)
@click.option("--value-field", default="value", show_default=True, help="JSON value field.")
@click.option(
    "--ts-field",
    default="ts",
    show_default=True,
    help="JSON time field: ISO 8601 or epoch s/ms/µs; missing: stamped on receipt.",
)
@click.option(
    "--unknown-sensors",
    type=click.Choice(["create", "refuse"]),
    default="create",
    show_default=True,
    help="create: a new sensor (source mqtt) per new name; refuse: to dead letters.",
)
@click.option(
    "--interval",
    type=DURATION,
    default="1s",
    show_default=True,
    help="Nominal interval of created sensors.",
)
@click.option("--unit", default="", help="Unit of created sensors.")
@click.option(
    "--client-id",
    default="plantcast",
    show_default=True,
    help="Fixed client id: the broker keeps this session (and its unacknowledged messages) "
    "across restarts. Give each running connector its own.",
)
@click.option(
    "--mqtt-version",
    type=click.Choice(["5", "3.1.1"]),
    default="5",
    show_default=True,
    help="5: clean_start off, session expiry, receive maximum; 3.1.1: clean_session off.",
)
@click.option(
    "--session-expiry",
    type=DURATION,
    default="7d",
    show_default=True,
    help="How long the broker keeps the session while the connector is away (MQTT 5).",
)
@batch_options("messages", "a batch's first message")
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1, max=65535),
    default=10000,
    show_default=True,
    help="Unacknowledged messages the broker may send ahead (MQTT 5 receive maximum); also "
    "the bound of the in-memory queue.",
)
@click.option(
    "--max-payload",
    type=click.IntRange(min=1),
    default=65536,
    show_default=True,
    help="Larger payloads go to dead letters (bytes).",
)
@click.option(
    "--report-every",
    type=DURATION,
    default="10s",
    show_default=True,
    help="Print a progress line this often (0s: never).",
)
def connect_mqtt(database_url, broker, topics, fmt, template, name_format, mapping, **kw) -> None:
    """Subscribe to an MQTT broker and store what the topics carry, acknowledging each message
    only after its batch has committed (nothing lost; bad payloads go to dead letters)."""
    import signal
    import threading

    from plantcast.core.config import load_settings
    from plantcast.core.errors import InputError
    from plantcast.ingest.connectors.mqtt import Broker, MqttConnector, Options
    from plantcast.ingest.connectors.payloads import JsonFields
    from plantcast.ingest.connectors.topics import TopicMap
    from plantcast.services.context import open_store

    settings = load_settings(database_url=database_url)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    target = Broker.parse(
        broker,
        username=settings.mqtt_username,
        password=password,
        ca_file=settings.mqtt_ca_file,
    )
    if mapping and (template or name_format):
        raise InputError("give --template (with --name-format) or --mapping, not both")
    if name_format and not template:
        raise InputError("--name-format needs a --template", field="name-format")
    topic_map = (
        TopicMap.from_file(mapping)
        if mapping
        else TopicMap(template=template, name_format=name_format)
    )
    options = Options(
        topics=tuple(topics),
        fmt=fmt,
        topic_map=topic_map,
        json_fields=JsonFields(value=kw["value_field"], ts=kw["ts_field"]),
        create_sensors=kw["unknown_sensors"] == "create",
        interval=kw["interval"],
        unit=kw["unit"],
        client_id=kw["client_id"],
        mqtt_version=kw["mqtt_version"],
        session_expiry_s=int(kw["session_expiry"].total_seconds()),
        batch_size=kw["batch_size"],
        flush_ms=_flush_ms(kw["flush"]),
        max_inflight=kw["max_inflight"],
        max_payload=kw["max_payload"],
    )
    stop = threading.Event()

    def _stop(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    store = _open_store_retrying(open_store, database_url, stop, say)
    if store is None:
        return
    with store:
        connector = MqttConnector(store, target, options, say=say)
        say(
            f"connect mqtt: {target} → {store.url}; {topic_map.describe()}; batches of "
            f"{options.batch_size:,} or {options.flush_ms} ms; Ctrl-C stops"
        )
        stats = connector.run(stop, report_every=kw["report_every"].total_seconds())
    ages = stats.age_percentiles()
    age = f"; reading age at commit p50 {ages[0]:.3f} s, p95 {ages[1]:.3f} s" if ages else ""
    say(
        f"stopped: {stats.messages:,} messages, {stats.readings:,} readings stored, "
        f"{stats.dead_letters:,} dead letters{age}"
    )


# -- simulate-plc mqtt (the PLC's publishing side; the logic is in ingest.connectors.plc_mqtt) --
def _open_store_retrying(open_store, database_url, stop, say):
    """The store, waiting with backoff while the database is down (None: stopped meanwhile)."""
    from plantcast.core.errors import StoreUnavailable

    delay = 0.5
    while True:
        try:
            return open_store(database_url, init=True)
        except StoreUnavailable as exc:
            say(f"{exc}; retrying in {delay:g} s")
            if stop.wait(delay):
                return None
            delay = min(delay * 2, 30)


def _flush_ms(flush) -> int:
    ms = round(flush.total_seconds() * 1000)
    if ms < 1:
        raise click.BadParameter("must be at least 1ms", param_hint="--flush")
    return ms


@simulate_plc.command("mqtt")
@click.option(
    "--broker",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="mqtt://HOST:PORT or mqtts://HOST:PORT (user: $PLANTCAST_MQTT_USERNAME/PASSWORD).",
)
@click.option(
    "--topic-prefix",
    default="plantcast/demo",
    show_default=True,
    help="Each sensor publishes on PREFIX/<sensor>.",
)
@click.option(
    "--database-url",
    default=None,
    help="Read injected events (and stored models) from this database (default: "
    "$PLANTCAST_DATABASE_URL if set; else none).",
)
@click.option(
    "--sensor", "sensors", multiple=True, help="Sensor (repeatable; default: the demo's)."
)
@click.option(
    "--interval", type=DURATION, default="1s", show_default=True, help="Real time a tick."
)
@click.option("--step", type=DURATION, default=None, help="Data time a tick (default: --interval).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N ticks.")
def simulate_plc_mqtt(broker, topic_prefix, database_url, sensors, interval, step, count) -> None:
    """Publish the demo sensors to a broker: QoS 1, JSON {"ts": RFC 3339, "value": float}."""
    import signal

    from plantcast.cli.common import out
    from plantcast.core.config import load_settings
    from plantcast.ingest.connectors.mqtt import Broker
    from plantcast.ingest.connectors.plc import open_demo_plc, plc_database
    from plantcast.ingest.connectors.plc_mqtt import MqttPublisher

    if interval.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    settings = load_settings()
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    target = Broker.parse(
        broker, username=settings.mqtt_username, password=password, ca_file=settings.mqtt_ca_file
    )
    publisher = MqttPublisher(target, prefix=topic_prefix)
    with open_demo_plc(plc_database(database_url), sensors, interval=interval, step=step) as plc:

        def _stop(signum, _frame) -> None:
            console.print(f"{signal.Signals(signum).name}: stopping", markup=False)
            plc.stop()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        publisher.connect()
        console.print(
            f"publishing {len(plc.names)} sensor(s) to {target} on {topic_prefix}/<sensor> "
            f"every {interval.total_seconds():g}s (QoS 1); Ctrl-C stops",
            markup=False,
        )
        try:
            ticks = plc.run(publisher.publish, count=count)
        finally:
            publisher.close()
    s = publisher.stats
    out.print(
        f"published {s.published:,} reading(s) in {ticks:,} tick(s), {s.acknowledged:,} acked"
    )
