"""The Silences page under AppTest: an operator adds a silence on a sensor and ends it, each
through plantcast.services.silences (one audit entry each); the overview shows the sensor
silenced meanwhile; a viewer's controls are disabled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard_fixtures import open_page
from plantcast.core.types import Source
from plantcast.services import users
from plantcast.services.overview import overview
from plantcast.services.silences import list_silences


@pytest.fixture
def page_user() -> str:
    return "olga"


@pytest.fixture
def page_db(page_store):
    store = page_store
    s = store.ensure_sensor("pump_1", source=Source.IMPORTED, interval=pd.Timedelta("1min"))
    idx = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=5, freq="1min", name="ts")
    store.write_readings(s.id, pd.Series(np.arange(5.0), index=idx))
    return store


def test_an_operator_adds_and_ends_a_silence(page_db):
    store = page_db
    users.add_user(store, "olga", "operator", actor="admin")
    at = open_page("silences.py")
    assert at.session_state["silences"] == []
    at.text_input(key="sil_reason").input("seal change").run()
    at.button(key="sil_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (made,) = list_silences(store)
    assert (made.scope, made.target, made.author, made.reason) == (
        "sensor", "pump_1", "olga", "seal change",
    )  # fmt: skip
    assert at.session_state["silences"] == [made.id]
    assert overview(store).rows[0].status == "silenced"
    assert not at.button(key="sil_end").disabled, [e.value for e in at.error]
    assert at.selectbox(key="sil_end_id").value == made.id
    at.button(key="sil_end").click().run()
    assert not at.error, [e.value for e in at.error]
    assert not at.exception, [e.value for e in at.exception]
    assert list_silences(store) == []
    assert overview(store).rows[0].status == "ok"
    with store.transaction(readonly=True) as tx:
        actions = [e.action for e in tx.audit_entries(actor="olga")]
    assert sorted(actions) == ["silence.add", "silence.end"]


def test_a_viewer_cannot_silence(page_db):
    users.add_user(page_db, "olga", "viewer", actor="admin")
    at = open_page("silences.py")
    assert at.button(key="sil_add").disabled and at.text_input(key="sil_reason").disabled
    assert "silence.add needs operator" in " ".join(c.value for c in at.caption)
