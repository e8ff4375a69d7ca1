"""Property-based fuzzing of the running API from its own OpenAPI document (schemathesis).

A real ``plantcast api`` (uvicorn) serves a SQLite store on a free port of 127.0.0.1; every
operation gets generated requests — valid ones, and invalid ones that must be refused with a
4xx — with a key that may do everything, half of them aimed at real sensors. No answer may be a
5xx, and every answer must match the documented status codes, media types and schemas. Bounded
by ``EXAMPLES`` cases per operation and generation mode; every case is sent (no time budget
that lets later operations pass untested), and every operation must have had at least
``FLOOR`` requests of each mode its inputs allow.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from plantcast.ingest.backfill import backfill
from plantcast.services.apikeys import create_key
from plantcast.store import Store

EXAMPLES = 24  # per operation and generation mode, shared by its target sensors (random, real)
FLOOR = 18  # requests each operation gets at the least, per mode its inputs allow
SENSORS = ("reservoir_pressure", "flow")
# The same cases every run (a CI run never fails by chance); PLANTCAST_FUZZ_EXPLORE=1 draws new
# ones each run, to hunt for more.
EXPLORE = os.environ.get("PLANTCAST_FUZZ_EXPLORE", "") not in (
    "",
    "0",
)  # simulated (events allowed) and imported


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'plantcast.db'}"
    store = Store.open(url)
    store.init()
    backfill(store, SENSORS[0], days=3, interval=pd.Timedelta("30min"), end="2026-01-15")
    from plantcast.core.types import Source

    store.ensure_sensor(SENSORS[1], source=Source.IMPORTED, interval=pd.Timedelta("1min"))
    token = create_key(store, "fuzz", "admin")[1]
    store.close()
    port = _free_port()
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "plantcast", "api", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path_factory.mktemp("fuzz-log") / "server.log"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"plantcast api exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("plantcast api did not answer /health within 20 s")
        yield base, token, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _fuzz(op, strategy, n, call) -> None:
    """Run ``call(case)`` on ``n`` generated cases (no shrinking: the first failure is shown)."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=n,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not EXPLORE,
    )
    @given(case=strategy)
    def run(case):
        call(op, case)

    run()


def test_the_running_api_survives_fuzzing(server):
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    base, token, log = server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    counts: dict[tuple[str, str], int] = {}
    spent: dict[str, float] = {}  # seconds in requests, per operation
    failures: list[str] = []

    def call(op, case):
        negative = bool(case.meta and case.meta.generation.mode.is_negative)
        extra = [negative_data_rejection] if negative else []
        key = (op.label, "negative" if negative else "positive")
        counts[key] = counts.get(key, 0) + 1
        t0 = time.monotonic()
        case.call_and_validate(base_url=base, headers=headers, checks=checks + extra, timeout=30)
        spent[op.label] = spent.get(op.label, 0.0) + time.monotonic() - t0

    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 14
    no_input = {op.label for op in operations if not (list(op.iter_parameters()) or op.body)}
    for op in operations:
        targets = [None, *SENSORS] if "{name}" in op.path else [None]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for target in targets:
                pinned = {"name": target} if target else None
                strategy = op.as_strategy(generation_mode=mode, path_parameters=pinned)
                try:
                    _fuzz(op, strategy, EXAMPLES // len(targets), call)
                except Unsatisfiable as exc:
                    if not (mode is GenerationMode.NEGATIVE and op.label in no_input):
                        failures.append(f"{op.label} {mode.value} {target}: {exc!r}")
                    # else: no invalid request exists (e.g. /health takes no input)
                except (Exception, BaseExceptionGroup) as exc:  # collect all, then report
                    failures.append(f"{op.label} {mode.value} {target}: {exc}"[:3000])
    print(f"fuzzed {sum(counts.values())} requests in {time.monotonic() - started:.1f} s:", counts)
    print("seconds in requests:", {k: round(v, 1) for k, v in spent.items()})
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + log.read_text()[-5000:]
    short = {
        (op.label, mode): counts.get((op.label, mode), 0)
        for op in operations
        for mode in ("positive", "negative")
        if counts.get((op.label, mode), 0) < (1 if op.label in no_input else FLOOR)
        and not (mode == "negative" and op.label in no_input)
    }
    assert not short, f"operations with fewer requests than their floor: {short}"
