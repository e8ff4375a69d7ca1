"""Dead letters keep a short stable kind apart from the detail, and are counted by kind; an
older database (no kind column) is upgraded by ``init`` on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import MetaData, Table

from plantcast.ingest.connectors.payloads import JsonFields, PayloadError, parse_json, parse_number
from plantcast.store import Store
from plantcast.store.dead_letters import DeadLetter
from plantcast.store.schema import dead_letters

NOW_US = 1_767_225_600_000_000  # 2026-01-01


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b'{"value": 1', "not_json"),
        (b"[1, 2]", "json_not_object"),
        (b'{"v": 1}', "json_no_value"),
        (b'{"value": "high"}', "json_not_number"),
        (b'{"value": "low"}', "json_not_number"),
        (b'{"value": NaN}', "nan"),
        (b'{"value": 1e999}', "nan"),
        (b'{"ts": "yesterday", "value": 1}', "bad_time"),
        (b'{"ts": 99999999999999999999, "value": 1}', "time_out_of_range"),
    ],
)
def test_json_payload_problems_have_a_kind_and_a_detail(payload, kind):
    with pytest.raises(PayloadError) as info:
        parse_json(payload, JsonFields(), NOW_US)
    assert info.value.kind == kind
    assert str(info.value)  # the detail stays for people


@pytest.mark.parametrize(("payload", "kind"), [(b"high", "not_number"), (b"nan", "nan")])
def test_plain_payload_problems_have_a_kind(payload, kind):
    with pytest.raises(PayloadError) as info:
        parse_number(payload, NOW_US)
    assert info.value.kind == kind


def _letter(topic: str, value: str, kind: str) -> DeadLetter:
    body = json.dumps({"value": value}).encode()
    return DeadLetter(
        "mqtt", topic, body, f"json: 'value' is a str, not a number: {value!r}", kind=kind
    )


def test_letters_with_different_values_count_under_one_kind(store):
    store.add_dead_letters(
        [
            _letter("a", "high", "json_not_number"),
            _letter("b", "low", "json_not_number"),
            _letter("c", "off", "json_not_number"),
            DeadLetter(
                "mqtt", "d", b"x" * 10, "payload of 10 bytes exceeds", kind="payload_too_large"
            ),
            DeadLetter(
                "opcua", "ns=2;i=1", b"{}", "bad status BadSensorFailure", kind="bad_status"
            ),
        ]
    )
    assert store.count_dead_letters() == {
        "json_not_number": 3,
        "payload_too_large": 1,
        "bad_status": 1,
    }
    assert store.count_dead_letters(source="opcua") == {"bad_status": 1}
    letters = {d.topic: d for d in store.list_dead_letters()}
    assert letters["b"].kind == "json_not_number"
    assert "'low'" in letters["b"].reason  # the detail keeps the value


def test_init_upgrades_a_dead_letters_table_without_kind(db_url):
    store = Store.open(db_url)
    try:
        store.init()
        with store.write() as conn:  # the table as it was before kinds
            conn.exec_driver_sql("ALTER TABLE dead_letters DROP COLUMN kind")
            old = Table("dead_letters", MetaData(), autoload_with=conn)
            assert "kind" not in old.c
            conn.execute(  # kind is left out: the columns an older release wrote
                dead_letters.insert().values(
                    source="mqtt", topic="t", payload=b"1", payload_size=1, reason="older"
                )
            )
        store.init()  # what every command that opens the store with init=True runs
        store.init()  # and again: idempotent
        store.add_dead_letters([_letter("new", "high", "json_not_number")])
        assert store.count_dead_letters() == {"other": 1, "json_not_number": 1}
        kinds = {d.reason: d.kind for d in store.list_dead_letters()}
        assert kinds["older"] == "other"
    finally:
        store.close()


def test_cli_counts_dead_letters_by_kind(sqlite_url):
    store = Store.open(sqlite_url)
    store.init()
    store.add_dead_letters([_letter(t, v, "json_not_number") for t, v in (("a", "x"), ("b", "y"))])
    store.close()
    env = {**os.environ, "PLANTCAST_DATABASE_URL": sqlite_url}
    proc = subprocess.run(
        [sys.executable, "-m", "plantcast", "dead-letters", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["total"] == 2
    assert doc["by_kind"] == {"json_not_number": 2}
    assert {d["kind"] for d in doc["letters"]} == {"json_not_number"}
