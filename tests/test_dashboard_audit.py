"""The Audit log page and the sensor page's note form under AppTest: an operator adds a note
(stored under their name, one audit row, drawn on the chart); an admin reads the audit log and
filters it; a viewer gets no note form and anyone but an admin is told the log is for admins."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard_fixtures import open_page
from plantcast.ingest.backfill import backfill
from plantcast.services import users
from plantcast.services.notes import list_annotations


@pytest.fixture
def page_db(page_store):
    backfill(page_store, "reservoir_pressure", days=1, interval=pd.Timedelta("30min"))
    return page_store


def test_an_operator_adds_a_note_on_the_sensor_page(page_db):
    users.add_user(page_db, "ada", "operator", actor="setup")
    at = open_page("sensor.py")
    at.text_input(key="note_text").input("seal replaced on pump 3")
    at.text_input(key="note_over").input("2h").run()
    at.button(key="note_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [note] = list_annotations(page_db)
    assert (note.text, note.author) == ("seal replaced on pump 3", "ada")
    assert note.ends_at is not None and note.ends_at - note.starts_at == pd.Timedelta("2h")
    with page_db.transaction(readonly=True) as tx:
        assert [e.action for e in tx.audit_entries(actor="ada")] == ["annotation.add"]
    at.run()
    assert "seal replaced on pump 3" in at.session_state["overlays"]["annotations"]


def test_a_bad_span_is_refused_in_place_and_nothing_is_stored(page_db):
    users.add_user(page_db, "ada", "operator", actor="setup")
    at = open_page("sensor.py")
    at.text_input(key="note_text").input("valve check")
    at.text_input(key="note_over").input("soon").run()
    at.button(key="note_add").click().run()
    assert "over the last" in " ".join(e.value for e in at.error)
    assert list_annotations(page_db) == []


def test_a_viewer_has_no_note_form(page_db):
    users.add_user(page_db, "ada", "viewer", actor="setup")
    at = open_page("sensor.py")
    assert not [t for t in at.text_input if t.key == "note_text"]


def test_an_admin_reads_and_filters_the_audit_log(page_db):
    users.add_user(page_db, "ada", "admin", actor="setup")
    users.add_user(page_db, "olga", "viewer", actor="ada")
    users.set_role(page_db, "olga", "operator", actor="ada")
    at = open_page("audit.py")
    assert at.session_state["audit_rows"] == [
        ("ada", "user.set_role", "user:olga"),
        ("ada", "user.add", "user:olga"),
        ("setup", "user.add", "user:ada"),
    ]
    at.text_input(key="audit_action").input("user.set_role").run()
    assert at.session_state["audit_rows"] == [("ada", "user.set_role", "user:olga")]


def test_the_audit_log_is_for_admins(page_db):
    users.add_user(page_db, "ada", "operator", actor="setup")
    at = open_page("audit.py")
    assert "this page is for admins" in " ".join(i.value for i in at.info)
    assert "audit_rows" not in at.session_state
