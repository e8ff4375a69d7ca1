"""Benchmark connect mqtt end to end: publish → committed in PostgreSQL, beside mosquitto_sub.

Run: ``.venv/bin/python benchmarks/connectors.py [--quick] [--messages N] [--rate R]
[--pg-url URL]``.

One run, on this machine: a Mosquitto of its own (the README's no-loss settings: persistence,
no queue limits) on a free port; ``plantcast connect mqtt`` as a child process writing into a
fresh PostgreSQL schema (dropped at the end); ``mosquitto_sub -q 1`` on the same topics writing
to /dev/null (the broker's own pace); and a publisher process (paho, QoS 1) sending JSON
readings ``{"ts": <publish time, µs>, "value": …}`` round-robin over 1,000 topics, as fast as
it can or at ``--rate`` messages/s. A warm-up message per topic first creates the 1,000
sensors. Figures: publish rate, mosquitto_sub rate, end-to-end rate (first publish → last
reading committed, polled), and the connector's own sample of commit time − reading time (the
publish → committed latency, on one clock). Every process shares this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import psycopg

from _common import DEFAULT_PG_URL, ScratchSchemas, pg_version, print_table, progress
from plantcast.testing.mosquitto import MISSING, MOSQUITTO, Mosquitto, wait_for

TOPICS = 1000
PREFIX = "bench"


def publish(port: int, start: int, count: int, rate: float, ts_offset_us: int = 0) -> dict:
    """Child process: publish ``count`` QoS 1 messages; print the timings as JSON."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(0)  # unlimited: paho scans its queue per PUBACK otherwise
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.time()
    window: deque = deque()  # unacknowledged publishes: fewer than MQTT's 65,535 packet ids
    for i in range(start, start + count):
        if rate:
            ahead = t0 + (i - start) / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
        now_us = time.time_ns() // 1000 + ts_offset_us
        body = f'{{"ts": {now_us}, "value": {i}}}'
        window.append(client.publish(f"{PREFIX}/s{i % TOPICS}", body, qos=1))
        if len(window) >= 20_000:
            window.popleft().wait_for_publish(timeout=600)
    sent = time.time()
    for info in window:
        info.wait_for_publish(timeout=600)
    acked = time.time()
    client.disconnect()
    client.loop_stop()
    return {"start": t0, "sent": sent, "acked": acked}


def _publisher(port: int, start: int, count: int, rate: float, ts_offset_us: int = 0):
    args = [sys.executable, __file__, "--publish", str(port), str(start), str(count), str(rate)]
    return subprocess.Popen([*args, str(ts_offset_us)], stdout=subprocess.PIPE, text=True)


def _connector_cmd(args, url: str, port: int, i: int) -> list[str]:
    # Several connectors share the stream through an MQTT shared subscription.
    topic = f"$share/plantcast/{PREFIX}/#" if args.connectors > 1 else f"{PREFIX}/#"
    cmd = [sys.executable, "-c", "from plantcast.cli.main import cli; cli()"]
    cmd += ["connect", "mqtt", "--database-url", url, "--broker", f"mqtt://127.0.0.1:{port}"]
    cmd += ["--topic", topic, "--client-id", f"bench-connector-{i}", "--report-every", "0s"]
    cmd += ["--batch-size", str(args.batch_size), "--flush", f"{args.flush_ms}ms"]
    cmd += ["--max-inflight", str(max(10000, 2 * args.batch_size))]
    return [*cmd, "--template", f"{PREFIX}/{{sensor}}", "--mqtt-version", args.mqtt_version]


def _start_connector(cmd: list[str], until: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    while not any(until in x for x in lines):
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("the connector exited:\n" + "\n".join(lines))
        lines.append(line.rstrip())
    return proc, lines


def _stop_connector(proc: subprocess.Popen, lines: list[str]) -> tuple[float, float]:
    """SIGTERM; the p50 and p95 of the connector's commit time - reading time."""
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    lines += rest.splitlines()
    summary = next((x for x in lines if x.startswith("stopped:")), "")
    m = re.search(r"p50 ([\d.]+) s, p95 ([\d.]+) s", summary)
    return (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM readings").fetchone()[0]


def _args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 messages")
    parser.add_argument("--messages", type=int, default=None, help="default 300,000")
    parser.add_argument("--rate", type=float, default=0, help="publish rate; 0: flat out")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--flush-ms", type=int, default=200)
    parser.add_argument("--mqtt-version", choices=["5", "3.1.1"], default="5")
    parser.add_argument(
        "--connectors", type=int, default=1, help="N processes on a shared subscription"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    n = args.messages or (50_000 if args.quick else 300_000)
    version = pg_version(args.pg_url)
    if version is None:
        raise SystemExit("this benchmark needs PostgreSQL (--pg-url)")
    if MOSQUITTO is None:
        raise SystemExit(MISSING)
    if not shutil.which("mosquitto_sub"):
        raise SystemExit("mosquitto_sub is missing (apt-get install mosquitto-clients)")
    schemas = ScratchSchemas(args.pg_url)
    workdir = tempfile.mkdtemp(prefix="plantcast-bench-mqtt-")
    procs: list[subprocess.Popen] = []
    broker = Mosquitto(Path(workdir), autosave_interval=10)
    try:
        url = schemas.create("mqtt")
        broker.start()
        port = broker.port
        progress(f"mosquitto on port {port}, PostgreSQL {version}, {os.cpu_count()} cores")
        cmds = [_connector_cmd(args, url, port, i) for i in range(args.connectors)]
        running = [_start_connector(c, "subscribed to") for c in cmds]
        procs += [p for p, _ in running]
        progress("warm-up: one reading per topic creates the 1,000 sensors")
        _publisher(port, 0, TOPICS, 0, ts_offset_us=-86_400_000_000).communicate()
        wait_for(lambda: _count(url) >= TOPICS, 120, "the warm-up readings", every=0.2)
        sub_cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1"]
        sub_cmd += ["-t", f"{PREFIX}/#", "-C", str(n), "-i", "bench-sub"]
        sub = subprocess.Popen(sub_cmd, stdout=subprocess.DEVNULL)
        procs.append(sub)
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; give it its SUBACK
        how = f" at {args.rate:,.0f}/s" if args.rate else " flat out"
        progress(f"live: publishing {n:,} messages over {TOPICS:,} topics at QoS 1{how}")
        out, _ = _publisher(port, TOPICS, n, args.rate).communicate()
        timing = json.loads(out)
        sub.wait(timeout=600)
        sub_done = time.time()
        wait_for(lambda: _count(url) >= TOPICS + n, 600, "every reading committed", every=0.1)
        committed = time.time()
        ages = [_stop_connector(p, lines) for p, lines in running]
        p50, p95 = (f"{max(a[k] for a in ages):.3f}" for k in (0, 1))  # the worst connector's
        progress(f"backlog: {n:,} more messages queued in the session while the connector is down")
        _publisher(port, TOPICS + n, n, 0).communicate()
        t_start = time.time()
        # A resumed session gets its queued messages right after CONNACK: time from there.
        running = [_start_connector(cmds[0], "connected to")]
        t_subscribed = time.time()  # the first one drains while the others start
        running += [_start_connector(c, "connected to") for c in cmds[1:]]
        procs += [p for p, _ in running]
        wait_for(lambda: _count(url) >= TOPICS + 2 * n, 600, "the backlog committed", every=0.1)
        t_drained = time.time()
        for p, lines in running:
            _stop_connector(p, lines)
        stored = _count(url) - TOPICS
        t0 = timing["start"]
        rows = [
            [
                "publisher (paho, QoS 1, all PUBACKed)",
                n / (timing["acked"] - t0),
                timing["acked"] - t0,
                "",
                "",
            ],
            ["mosquitto_sub -q 1 > /dev/null", n / (sub_done - t0), sub_done - t0, "", ""],
            [
                "connect mqtt → committed in PostgreSQL",
                n / (committed - t0),
                committed - t0,
                p50,
                p95,
            ],
            [
                "connect mqtt draining a backlog of as many",
                n / (t_drained - t_subscribed),
                t_drained - t_subscribed,
                "",
                "",
            ],
        ]
        print_table(
            f"MQTT {args.mqtt_version} end to end: {n:,} JSON messages over {TOPICS:,} "
            f"topics{how}, {args.connectors} connector process(es), batches of "
            f"{args.batch_size:,} or {args.flush_ms} ms; {os.cpu_count()} cores shared by the "
            "broker, publisher, subscriber, connector and PostgreSQL",
            ["path", "msg/s", "seconds", "p50 latency s", "p95 latency s"],
            [[r[0], f"{r[1]:,.0f}", f"{r[2]:.2f}", r[3], r[4]] for r in rows],
            left=1,
        )
        print(
            f"stored {stored:,} of {2 * n:,} published (lost {2 * n - stored:,}); latency: the "
            "connector's commit time - publish time (a sample spread over the run); the restarted "
            f"connector took {t_subscribed - t_start:.1f} s to connect (not in the drain time)"
        )
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        broker.stop()
        schemas.drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, start, count, rate, offset = sys.argv[2:7]
        print(json.dumps(publish(int(port), int(start), int(count), float(rate), int(offset))))
    else:
        main()
