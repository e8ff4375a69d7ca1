"""The Users and keys page under AppTest: an admin adds a user, changes a role, disables one,
creates a key for a user (its token shown once) and revokes it, each audited; anyone else is
told the page is for admins."""

from __future__ import annotations

from dashboard_fixtures import open_page
from plantcast.services import apikeys, users


def test_an_admin_manages_users_and_keys(page_store):
    store = page_store
    users.add_user(store, "ada", "admin", actor="setup")
    at = open_page("people.py")
    at.text_input(key="people_name").input("olga")
    at.selectbox(key="people_role").select("viewer").run()
    at.button(key="people_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["people"]["olga"] == ("viewer", True)
    at.selectbox(key="people_user").select("olga")
    at.selectbox(key="people_new_role").select("operator").run()
    at.button(key="people_set_role").click().run()
    assert users.role_of(store, "olga") == "operator"

    at.text_input(key="key_name").input("scada-bridge")
    at.selectbox(key="key_user").select("olga").run()
    at.button(key="key_create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(w.value for w in at.warning)
    token = shown.split("`")[1]
    caller = apikeys.caller_of(store, token)
    assert caller is not None and caller.role == "operator"
    at.button(key="key_revoke").click().run()
    assert apikeys.caller_of(store, token) is None
    at.selectbox(key="people_user").select("olga").run()
    at.button(key="people_disable").click().run()
    assert users.role_of(store, "olga") is None
    with store.transaction(readonly=True) as tx:
        actions = sorted(e.action for e in tx.audit_entries(actor="ada"))
    assert actions == ["key.create", "key.revoke", "user.add", "user.disable", "user.set_role"]


def test_anyone_else_is_told_it_is_for_admins(page_store):
    users.add_user(page_store, "ada", "operator", actor="setup")
    at = open_page("people.py")
    assert "this page is for admins" in " ".join(i.value for i in at.info)
    assert not at.button
