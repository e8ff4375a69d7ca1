"""Benchmark plant scale: the streamer's tick over 100, 1,000 and 10,000 sensors, and memory.

Run: ``.venv/bin/python benchmarks/scale.py [--quick | --full] [--pg-url URL | --no-pg]``.

Each case runs in its own process (so its peak RSS is its own) on a fresh SQLite file or a
fresh PostgreSQL schema: a first streamer run creates the sensors and writes a little history
(untimed), then a second one runs ``TICKS`` ticks with ``tick=0`` and times each tick's work
(events query + generation + the one batched write). Sections are functions (``section_…``)
so others can be added beside the streamer's. Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from _common import extremes_by_engine, parse_size_args, pg_version, print_table, progress, scratch
from plantcast.ingest.stream import Streamer
from plantcast.store import Store

STEP = pd.Timedelta("30min")
HISTORY_TICKS = 5  # readings per sensor written before timing ("backfill a little")
TICKS = 5  # timed ticks
GOALS = {"sqlite": 1.0, "postgresql": 0.5}  # seconds of work per tick at 10,000 sensors


class TimedStreamer(Streamer):
    """A Streamer that records each tick's work: events query, generation, write."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.tick_secs: list[float] = []
        self._t = 0.0

    def _refresh_events(self) -> None:
        self._t = time.perf_counter()
        super()._refresh_events()

    def _flush(self, *, force: bool) -> bool:
        ok = super()._flush(force=force)
        if not force:
            self.tick_secs.append(time.perf_counter() - self._t)
        return ok


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def stream_case(url: str, sensors: int) -> dict:
    """One case, in this process: set up ``sensors`` lanes, then time TICKS ticks."""
    names = [f"scale_{i:05d}" for i in range(sensors)]
    with Store.open(url) as store:
        store.init()
        t0 = time.perf_counter()
        Streamer(store, names, tick=0, step=STEP, count=HISTORY_TICKS).run()
        setup = time.perf_counter() - t0
        streamer = TimedStreamer(store, names, tick=0, step=STEP, count=TICKS)
        t0 = time.perf_counter()
        stats = streamer.run()
        total = time.perf_counter() - t0
        rss = rss_mb()
    if stats.written != sensors * TICKS:
        raise RuntimeError(f"wrote {stats.written}, want {sensors * TICKS}")
    ticks = np.array(streamer.tick_secs)
    return {
        "sensors": sensors,
        "setup": setup,
        "open": total - float(ticks.sum()),
        "median": float(np.median(ticks)),
        "max": float(ticks.max()),
        "rss": rss,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_case(section: str, url: str, size: int) -> dict:
    """Run one case of a section in a fresh interpreter; returns its JSON result."""
    cmd = [sys.executable, __file__, "--case", section, url, str(size)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{section} {size}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_stream(targets: list[tuple[str, str]], sizes: tuple[int, ...]) -> list[dict]:
    """The streamer: work per tick (events + generate + one batched write) by sensor count."""
    results = []
    for engine, make_url in targets:
        for n in sizes:
            progress(f"{engine}: streamer, {n:,} sensors ({HISTORY_TICKS} + {TICKS} ticks)")
            results.append({"engine": engine, **run_case("stream", make_url(n), n)})
    report_stream(results)
    return results


def report_stream(results: list[dict]) -> None:
    rows = [
        [
            r["engine"],
            f"{r['sensors']:,}",
            f"{r['median'] * 1e3:,.0f}",
            f"{r['max'] * 1e3:,.0f}",
            f"{r['median'] / r['sensors'] * 1e6:,.1f}",
            f"{r['open']:.1f}",
            f"{r['rss']:,.0f}",
            f"{r['peak']:,.0f}",
        ]
        for r in results
    ]
    print_table(
        f"Streamer — `Streamer(tick=0)`, {TICKS} timed ticks after {HISTORY_TICKS} of history;"
        " work per tick = one events query\n   + generation + one batched write (readings and"
        " clocks) in one transaction. Goal at 10,000 sensors:\n   ≤ 0.5 s a tick on PostgreSQL,"
        " ≤ 1 s on SQLite (at the demo's 2 s tick). RSS of the case's own process.",
        [
            "engine",
            "sensors",
            "tick ms (median)",
            "tick ms (max)",
            "µs/sensor",
            "lanes open s",
            "RSS MB",
            "peak RSS MB",
        ],
        rows,
        left=1,
    )
    growth = []
    for engine, lo, hi in extremes_by_engine(results):
        largest = hi["sensors"] == 10_000
        verdict = "-"
        if largest:
            verdict = "met" if hi["median"] <= GOALS[engine] else "short"
        growth.append(
            [
                engine,
                f"{hi['sensors']:,} / {lo['sensors']:,} = {hi['sensors'] / lo['sensors']:,.0f}×",
                f"{hi['median'] / lo['median']:,.1f}×",
                f"{hi['rss'] / lo['rss']:,.2f}×",
                f"{GOALS[engine]:.1f} s: {verdict}",
            ]
        )
    print_table(
        "   growth factor, largest / smallest sensor count",
        ["engine", "sensors", "tick time", "RSS", "goal at 10,000"],
        growth,
        left=1,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--case"]:  # a child process: one case of one section
        section, url, size = argv[1], argv[2], int(argv[3])
        result = {"stream": stream_case}[section](url, size)
        print(json.dumps(result))
        return 0
    section = "all"
    if "--section" in argv:  # stream | detect | all (parse_size_args does not know it)
        i = argv.index("--section")
        section, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
    args = parse_size_args(__doc__, argv, "100 and 1,000 sensors only")
    sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    server = None if args.no_pg else pg_version(args.pg_url)
    print(
        f"plantcast scale benchmark: Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, PostgreSQL {server or 'not used'},"
        f" {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at start"
    )
    with scratch(args.pg_url if server else None) as (tmpdir, schemas):
        targets = [("sqlite", lambda n: f"sqlite:///{os.path.join(tmpdir, f'stream{n}.db')}")]
        if schemas is not None:
            targets.append(("postgresql", lambda n: schemas.create(f"stream{n}")))
        if section in ("all", "stream"):
            section_stream(targets, sizes)
        if section in ("all", "detect"):
            section_detect(tmpdir, schemas, sizes)
    return 0


def section_detect(tmpdir: str, schemas, sizes: tuple[int, ...]) -> list[dict]:
    """One detect pass, serial vs LocalCluster: in ``scale_detect.py`` (its cases run there)."""
    import scale_detect

    targets = [scale_detect.sqlite_target(tmpdir)]
    if schemas is not None:
        targets.append(scale_detect.pg_target(schemas))
    return scale_detect.section_detect(targets, sizes)


if __name__ == "__main__":
    sys.exit(main())
