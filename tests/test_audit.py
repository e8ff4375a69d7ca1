"""The audit trail: one entry per change, written with the change, filtered, never rewritten."""

from __future__ import annotations

import pandas as pd
import pytest

from plantcast.core.errors import StoreError
from plantcast.services import audit


def test_entries_are_written_in_the_change_transaction_and_listed_newest_first(store):
    with store.transaction() as tx:
        tx.audit("ann", "alert.acknowledge", "alert:1", {"status": "open"}, {"status": "acked"})
        tx.audit("bob", "silence.add", "sensor:p1", None, {"reason": "seal swap"})
    got = audit.entries(store)
    assert [(e.actor, e.action, e.target) for e in got] == [
        ("bob", "silence.add", "sensor:p1"),
        ("ann", "alert.acknowledge", "alert:1"),
    ]
    assert got[1].before == {"status": "open"} and got[1].after == {"status": "acked"}
    assert got[0].at.tzinfo is not None
    assert [e.actor for e in audit.entries(store, action="alert.")] == ["ann"]
    assert [e.actor for e in audit.entries(store, actor="bob")] == ["bob"]
    assert audit.entries(store, target="alert:2") == []
    assert audit.entries(store, since=pd.Timestamp.now(tz="UTC") + pd.Timedelta("1h")) == []


def test_a_failed_change_leaves_no_entry(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.audit("ann", "limit.set", "sensor:p1", None, {"high": 5})
        raise RuntimeError("the change itself failed")
    assert audit.entries(store) == []


def test_values_are_made_json_and_only_changed_fields_are_kept():
    before = {"status": "open", "assignee": None, "ts": pd.Timestamp("2026-01-01", tz="UTC")}
    after = {"status": "acknowledged", "assignee": None, "ts": before["ts"]}
    assert audit.changed(before, after) == ({"status": "open"}, {"status": "acknowledged"})
    assert audit.jsonable({"t": pd.Timestamp("2026-01-01", tz="UTC")}) == {
        "t": "2026-01-01T00:00:00+00:00"
    }
    assert audit.jsonable({"every": pd.Timedelta("8h")}) == {"every": "8h"}


def test_the_actor_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", "shift-lead")
    assert audit.cli_actor() == "shift-lead"


def test_unknown_column_values_are_refused(store):
    with pytest.raises((StoreError, TypeError)), store.transaction() as tx:
        tx.audit("ann", "x", "y", {"bad": object()}, None)
