"""Benchmark CSV import speed: the whole ``plantcast import`` process against ``psql \\copy``.

Run: ``.venv/bin/python benchmarks/import_speed.py [--quick] [--rows N] [--rounds R]``
(``--pg-url URL``).

One CSV file (``ts,value``, one reading a second, ISO 8601 UTC times, 2M rows by default) is
imported into PostgreSQL by ``plantcast import FILE --sensor S`` (a process of its own, timed
from launch to exit: start-up, checks, writes, commit and the seasons detected after) and loaded
by ``psql \\copy`` (also launch to exit) into a keyless table and into the very ``readings``
table of a fresh store (``sensor_id`` defaulting to the sensor's id). Rounds alternate the three on
fresh schemas and the best of each is kept, so a burst of load on the machine hits neither
alone. Goal: plantcast's rate ≥ 0.5× psql's. Tables go to stdout, progress to stderr; the file
and the schemas are deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg

from _common import ScratchSchemas, pg_version, print_table, progress, scratch
from import_memory import write_csv
from plantcast.core.types import Source
from plantcast.store import Store
from plantcast.store.partitions import ensure_partitions

GOAL = 0.5
SENSOR = "imported_flow"


def plantcast_import(url: str, path: Path, src: str | None = None) -> float:
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    if src is not None:  # another checkout's sources (--baseline-src): before and after
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "plantcast", "import", str(path), "--sensor", SENSOR]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def psql_copy(url: str, path: Path, into: str) -> float:
    """``psql \\copy`` of the same file: into a keyless table, or into the very ``readings``
    table plantcast writes (monthly partitions, primary key, foreign key to sensors) of a store
    made by ``plantcast init``, for a sensor made the way the import makes it."""
    if into == "keyless":
        table = "ref_readings"
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE TABLE ref_readings (sensor_id integer NOT NULL DEFAULT 1,"
                " ts timestamptz NOT NULL, value double precision NOT NULL)"
            )
    else:
        table = "readings"
        store = Store.open(url)
        store.init()
        sid = store.ensure_sensor(SENSOR, source=Source.IMPORTED, interval=pd.Timedelta("1s")).id
        with store.write() as conn:
            ensure_partitions(
                conn, pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-03-01", tz="UTC")
            )
        store.close()
        with psycopg.connect(url) as conn:
            conn.execute(f"ALTER TABLE readings ALTER COLUMN sensor_id SET DEFAULT {int(sid)}")
    command = f"\\copy {table} (ts, value) FROM '{path}' (FORMAT csv, HEADER true)"
    t0 = time.perf_counter()
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True)
    secs = time.perf_counter() - t0
    return secs, table


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from _common import DEFAULT_PG_URL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200k rows, one round")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--baseline-src", help="also time `plantcast import` from this src folder (e.g. main's)"
    )
    args = parser.parse_args(argv)
    rows, rounds = (200_000, 1) if args.quick else (args.rows, args.rounds)
    server = pg_version(args.pg_url)
    if server is None or shutil.which("psql") is None:
        print("needs a PostgreSQL server and psql", file=sys.stderr)
        return 2
    best: dict[str, float] = {}
    with scratch(args.pg_url) as (tmpdir, schemas):
        assert isinstance(schemas, ScratchSchemas)
        path = Path(tmpdir) / "import.csv"
        progress(f"writing {rows:,} rows to {path.name}")
        write_csv(path, rows)
        refs = {"keyless": "psql \\copy → keyless table", "readings": "psql \\copy → readings"}
        for rnd in range(rounds):
            for into, how in refs.items():
                url = schemas.create(f"{into[0]}{rnd}")
                progress(f"round {rnd}: {how}, {rows:,} rows")
                secs, table = psql_copy(url, path, into)
                assert count(url, table) == rows
                best[how] = min(secs, best.get(how, secs))
            if args.baseline_src:
                url = schemas.create(f"b{rnd}")
                progress(f"round {rnd}: plantcast import (baseline) {rows:,} rows")
                secs = plantcast_import(url, path, args.baseline_src)
                assert count(url, "readings") == rows
                how = f"plantcast import ({args.baseline_src})"
                best[how] = min(secs, best.get(how, secs))
            url = schemas.create(f"i{rnd}")
            progress(f"round {rnd}: plantcast import {rows:,} rows")
            secs = plantcast_import(url, path)
            assert count(url, "readings") == rows
            best["plantcast import"] = min(secs, best.get("plantcast import", secs))
            progress(
                f"round {rnd}: best so far " + ", ".join(f"{k} {v:.1f} s" for k, v in best.items())
            )
        size_mb = path.stat().st_size / 1e6
    mine = best["plantcast import"]
    table = [
        [
            how,
            f"{rows:,}",
            f"{size_mb:.0f}",
            f"{secs:.2f}",
            f"{rows / secs:,.0f}",
            f"{secs / mine:.2f}×",
        ]
        for how, secs in best.items()
    ]
    print_table(
        f"CSV import into PostgreSQL {server}, whole process (launch to exit), best of {rounds} "
        "alternating round(s);\n  ratio = plantcast import's rate / this row's rate",
        ["method", "rows", "MB", "seconds", "rows/s", "plantcast / this"],
        table,
    )
    for how in refs.values():
        print(f"goal: plantcast import ≥ {GOAL}× {how}: {best[how] / mine:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
