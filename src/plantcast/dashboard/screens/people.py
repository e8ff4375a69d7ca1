"""The Users and keys page, for admins: the people who log in or own API keys and their roles
(add, change the role, disable), and API keys (create one for a user — its token shown once —
and revoke). Each change goes through plantcast.services (users, apikeys), audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.dashboard import state
from plantcast.dashboard.identity import Person, admin_page
from plantcast.services import apikeys, users


def _done(message: str) -> None:
    st.session_state["people_message"] = message
    st.rerun()


def _users(who: Person) -> None:
    store = state.store()
    found = users.list_users(store)
    st.session_state["people"] = {u.name: (u.role, u.active) for u in found}  # read by tests
    st.subheader("Users")
    if found:
        rows = pd.DataFrame(
            {
                "name": [u.name for u in found],
                "role": [u.role for u in found],
                "active": [u.active for u in found],
                "since (UTC)": [f"{u.created_at:%Y-%m-%d %H:%M}" for u in found],
            }
        )
        st.dataframe(rows, hide_index=True, key="people_table")
    c = st.columns(3)
    name = c[0].text_input("Name", key="people_name")
    role = c[1].selectbox("Role", users.ROLES, key="people_role")
    try:
        if c[2].button("Add user", key="people_add"):
            users.add_user(store, name, role, actor=who.name)
            _done(f"user {name.strip()} added as {role}")
        active = [u.name for u in found if u.active]
        if active:
            c = st.columns(3)
            chosen = c[0].selectbox("User", active, key="people_user")
            new_role = c[1].selectbox("New role", users.ROLES, key="people_new_role")
            if c[2].button("Set role", key="people_set_role"):
                users.set_role(store, chosen, new_role, actor=who.name)
                _done(f"{chosen} is now {new_role}")
            if c[2].button("Disable", key="people_disable"):
                users.disable(store, chosen, actor=who.name)
                _done(f"{chosen} disabled")
    except PlantcastError as exc:
        st.error(str(exc))


def _keys(who: Person) -> None:
    store = state.store()
    keys = store.list_api_keys()
    st.subheader("API keys")
    if keys:
        rows = pd.DataFrame(
            {
                "id": [k.id for k in keys],
                "name": [k.name for k in keys],
                "prefix": [k.prefix for k in keys],
                "scopes": [",".join(k.scopes) for k in keys],
                "revoked": [k.revoked_at is not None for k in keys],
            }
        )
        st.dataframe(rows, hide_index=True, key="keys_table")
    owners = [u.name for u in users.list_users(store) if u.active]
    c = st.columns(3)
    name = c[0].text_input("Key name", key="key_name")
    owner = c[1].selectbox("For user", owners, key="key_user") if owners else None
    try:
        if c[2].button("Create key", key="key_create", disabled=owner is None):
            key, token = apikeys.create_key(store, name, user=owner, actor=who.name)
            st.session_state["people_token"] = (key.name, token)
            _done(f"key {key.name} created for {owner}")
        live = [k.id for k in keys if k.revoked_at is None]
        if live:
            c = st.columns(3)
            chosen = c[0].selectbox("Key", live, key="key_id")
            if c[2].button("Revoke", key="key_revoke"):
                apikeys.revoke_key(store, int(chosen), actor=who.name)
                _done(f"key {chosen} revoked")
    except PlantcastError as exc:
        st.error(str(exc))


def render() -> None:
    st.title("Users and keys")
    who = admin_page("user.add")
    if who is None:
        return
    if message := st.session_state.pop("people_message", None):
        st.success(message)
    if shown := st.session_state.pop("people_token", None):
        st.warning(f"The token of key {shown[0]}, shown this once: `{shown[1]}`")
    _users(who)
    _keys(who)


render()
