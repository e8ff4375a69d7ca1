"""Shared benchmark plumbing: progress lines, aligned tables, scratch PostgreSQL schemas."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

_T0 = time.perf_counter()
APP_NAME = "plantcast-bench"  # tests terminate sessions named 'plantcast'; ours differ
DEFAULT_PG_URL = os.environ.get(
    "PLANTCAST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def parse_size_args(
    doc: str, argv: list[str] | None, quick_help: str, extra=None
) -> argparse.Namespace:
    """The options the storage-backed benchmarks share: --quick/--full, --pg-url/--no-pg;
    ``extra(parser)`` adds a benchmark's own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if extra is not None:
        extra(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help=quick_help)
    mode.add_argument("--full", action="store_true", help="add a 10M-reading history")
    pg = parser.add_mutually_exclusive_group()
    pg.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server to use")
    pg.add_argument("--no-pg", action="store_true", help="SQLite only")
    return parser.parse_args(argv)


def pg_options(doc: str, extra) -> argparse.Namespace:
    """A benchmark's options, ``extra(parser)``'s and --pg-url/--no-pg, parsed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    extra(parser)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--no-pg", action="store_true")
    return parser.parse_args()


def on_both_engines(args: argparse.Namespace, name: str, run) -> list:
    """``run(url)`` on a SQLite file and, unless --no-pg, on a scratch PostgreSQL schema, both
    named after ``name``: what each returned, SQLite's first."""
    with scratch(None if args.no_pg else args.pg_url) as (tmpdir, schemas):
        results = [run(f"sqlite:///{tmpdir}/{name}.db")]
        if schemas is not None:
            results.append(run(schemas.create(name)))
    return results


def rows_on_both_engines(doc: str, name: str, sensors: int, run) -> tuple[argparse.Namespace, list]:
    """For a benchmark of ``--sensors`` sensors over ``--days`` days: the parsed options and
    the rows of ``run(url, sensors, days)`` on both engines (:func:`on_both_engines`)."""

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--sensors", type=int, default=sensors)
        parser.add_argument("--days", type=float, default=7.0)

    args = pg_options(doc, extra)
    runs = on_both_engines(args, name, lambda url: run(url, args.sensors, args.days))
    return args, [row for rows in runs for row in rows]


def extremes_by_engine(results: list[dict]):
    """Per engine with two sizes or more: ``(engine, smallest, largest)`` of its result rows
    (each with ``engine`` and ``sensors``), for a growth-factor table."""
    for engine in dict.fromkeys(r["engine"] for r in results):
        mine = sorted((r for r in results if r["engine"] == engine), key=lambda r: r["sensors"])
        if len(mine) >= 2:
            yield engine, mine[0], mine[-1]


def progress(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def print_table(title: str, headers: list[str], rows: list[list], left: int = 2) -> None:
    """Print an aligned text table; the first ``left`` columns are left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [
            v.ljust(w) if i < left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in cells:
        print(line(row))
    sys.stdout.flush()


def pg_version(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        progress(f"PostgreSQL unreachable at {url}: {str(exc).strip().splitlines()[0]}")
        return None


class ScratchSchemas:
    """Fresh PostgreSQL schemas for one run, dropped together at the end."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.names: list[str] = []

    def create(self, tag: str = "") -> str:
        """A new schema; returns a URL whose sessions use it (search_path) under APP_NAME."""
        name = f"bench_{uuid.uuid4().hex[:10]}" + (f"_{tag}" if tag else "")
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.names.append(name)
        sep = "&" if "?" in self.pg_url else "?"
        return f"{self.pg_url}{sep}options=-csearch_path%3D{name}&application_name={APP_NAME}"

    def drop(self) -> None:
        if not self.names:
            return
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
        progress(f"dropped PostgreSQL schema(s) {', '.join(self.names)}")
        self.names.clear()


@contextmanager
def scratch(pg_url: str | None) -> Iterator[tuple[str, ScratchSchemas | None]]:
    """A temporary folder for SQLite files and, given a server, scratch schemas on it."""
    with tempfile.TemporaryDirectory(prefix="plantcast-bench-") as tmpdir:
        schemas = ScratchSchemas(pg_url) if pg_url else None
        try:
            yield tmpdir, schemas
        finally:
            if schemas is not None:
                schemas.drop()


def write_sensors(store, ids: list[int], us, values) -> None:
    """Readings at the times ``us`` (epoch µs, int64) for every sensor of ``ids``, sensor
    ``sid``'s values being ``values(sid)`` (as many): one bulk write per 500 sensors, each
    500's values made only when written."""
    import numpy as np

    from plantcast.store.readings import write_batch

    us = np.asarray(us, np.int64)
    for k in range(0, len(ids), 500):
        part = ids[k : k + 500]
        with store.write() as conn:
            write_batch(
                conn,
                {
                    "sensor_id": np.repeat(np.array(part, np.int64), len(us)),
                    "ts": np.tile(us, len(part)),
                    "value": np.concatenate([values(sid) for sid in part]),
                },
            )


def rss_mb(pid: int | str = "self") -> float | None:
    """A process's resident set (VmRSS) in MB, this one's by default; None where there is no
    such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
