"""The alerts inbox: its filters (services.inbox, on SQLite and PostgreSQL) and the page under
AppTest — acknowledge, resolve, assign, label and comment one alert or several at once, each
through plantcast.services.alert_workflow (one audit entry per alert); a viewer's controls are
disabled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard_fixtures import open_page
from plantcast.core.errors import NotFound, PlantcastError
from plantcast.core.types import AlertLabel, AlertStatus, Source
from plantcast.services import alert_workflow, users
from plantcast.services.inbox import inbox, parse_since
from plantcast.store import Store
from plantcast.store import alerts as alert_rows

NOW = pd.Timestamp.now(tz="UTC").floor("min")
STEP = pd.Timedelta("30min")


def _fill(store: Store) -> dict[str, int]:
    ids = {}
    for name in ("pump_1", "pump_2"):
        s = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP)
        idx = pd.date_range(end=NOW, periods=10, freq=STEP, name="ts")
        store.write_readings(s.id, pd.Series(np.arange(10.0), index=idx))
    plan = [
        ("a", "pump_1", "residual_z", NOW - pd.Timedelta("2h")),
        ("b", "pump_1", "level_shift", NOW - pd.Timedelta("3h")),
        ("c", "pump_2", "residual_z", NOW - pd.Timedelta("4h")),
        ("old", "pump_2", "stuck", NOW - pd.Timedelta("10d")),
    ]
    for key, sensor, detector, ts in plan:
        sid = store.get_sensor(sensor).id
        with store.write() as conn:
            ids[key] = alert_rows.insert_alert(
                conn, sid, ts=ts, detector=detector, score=6.0, value=1.0, expected=0.0,
                ends_at=ts + pd.Timedelta("1h") if key == "old" else None,
            )  # fmt: skip
    return ids


def test_filters(store):
    ids = _fill(store)
    found = lambda **kw: [r.alert.id for r in inbox(store, **kw)]  # noqa: E731
    assert found() == [ids["a"], ids["b"], ids["c"], ids["old"]]  # newest first
    assert found(sensor="pump_1") == [ids["a"], ids["b"]]
    assert found(detector="residual_z") == [ids["a"], ids["c"]]
    # since: alerts going on at any time after it (the old one ended 10 days ago)
    assert found(since=parse_since("7d")) == [ids["a"], ids["b"], ids["c"]]
    alert_workflow.acknowledge(store, [ids["b"]], actor="ann")
    users.add_user(store, "bob", "operator", actor="ann")
    alert_workflow.assign(store, [ids["c"]], "bob", actor="ann")
    alert_workflow.label(store, [ids["a"]], "false_alarm", actor="ann")
    assert found() == [ids["a"], ids["c"], ids["old"]]
    assert found(status="acknowledged") == [ids["b"]]
    assert found(status=None, assignee="bob") == [ids["c"]]
    assert found(status=None, label="false_alarm") == [ids["a"]]
    assert {r.source for r in inbox(store, status=None)} == {"pump_1", "pump_2"}
    with pytest.raises(NotFound):
        inbox(store, sensor="nope")
    with pytest.raises(PlantcastError, match="duration"):
        parse_since("soon")


# -- the page -----------------------------------------------------------------------------
@pytest.fixture
def page_user() -> str:
    return "olga"


@pytest.fixture
def page_db(page_store):
    return page_store, _fill(page_store)


def test_bulk_acknowledge_label_assign_and_comment(page_db):
    store, ids = page_db
    users.add_user(store, "olga", "operator", actor="admin")
    users.add_user(store, "bob", "operator", actor="admin")
    at = open_page("inbox.py")
    assert at.session_state["inbox"] == [ids["a"], ids["b"], ids["c"], ids["old"]]
    at.selectbox(key="inbox_sensor").select("pump_1").run()
    assert at.session_state["inbox"] == [ids["a"], ids["b"]]

    at.multiselect(key="inbox_ids").select(ids["a"]).select(ids["b"]).run()
    at.button(key="inbox_ack").click().run()
    assert not at.exception, [e.value for e in at.exception]
    got = {a.id: a for a in store.list_alerts()}
    assert got[ids["a"]].status is AlertStatus.ACKNOWLEDGED
    assert got[ids["b"]].status is AlertStatus.ACKNOWLEDGED
    assert got[ids["c"]].status is AlertStatus.OPEN
    assert "acknowledge: 2 alert(s)" in " ".join(s.value for s in at.success)
    assert at.session_state["inbox"] == []  # the status filter shows open ones

    at.selectbox(key="inbox_status").select("acknowledged").run()
    assert at.multiselect(key="inbox_ids").value == []  # they left the open list
    at.multiselect(key="inbox_ids").select(ids["a"]).run()
    at.selectbox(key="inbox_label_as").select("false_alarm").run()
    at.button(key="inbox_label_go").click().run()
    at.selectbox(key="inbox_assign_to").select("bob").run()
    at.button(key="inbox_assign").click().run()
    at.text_area(key="inbox_comment").input("seal replaced, reading was right").run()
    at.button(key="inbox_comment_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    detail = alert_workflow.detail(store, ids["a"])
    assert detail.alert.label is AlertLabel.FALSE_ALARM and detail.alert.assignee == "bob"
    assert [(c.author, c.text) for c in detail.comments] == [
        ("olga", "seal replaced, reading was right")
    ]
    assert [h.action for h in detail.history] == [
        "alert.acknowledge",
        "alert.label",
        "alert.assign",
        "alert.comment",
    ]
    assert {h.actor for h in detail.history} == {"olga"}
    shown = " ".join(m.value for m in at.markdown)
    assert "seal replaced, reading was right" in shown  # the one chosen alert's thread

    at.button(key="inbox_resolve").click().run()
    assert store.list_alerts(status="resolved")[0].id == ids["a"]


def test_a_viewer_cannot_change_anything(page_db):
    store, ids = page_db
    users.add_user(store, "olga", "viewer", actor="admin")
    at = open_page("inbox.py")
    assert "olga (viewer)" in " ".join(c.value for c in at.caption)
    at.multiselect(key="inbox_ids").select(ids["a"]).run()
    for key in ("inbox_ack", "inbox_resolve", "inbox_assign", "inbox_label_go"):
        assert at.button(key=key).disabled, key
    assert at.text_area(key="inbox_comment").disabled
    assert "alert.acknowledge needs operator" in " ".join(c.value for c in at.caption)
    assert all(a.status is AlertStatus.OPEN for a in store.list_alerts())
