"""The Audit log page, for admins: who changed what and when, newest first, with the fields
before and after; filtered by actor, action and target (plantcast.services.audit)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.dashboard import state
from plantcast.dashboard.identity import admin_page
from plantcast.services import audit

LIMIT = 500


def _json(fields: dict | None) -> str:
    return "" if fields is None else json.dumps(fields, sort_keys=True, default=str)


def render() -> None:
    st.title("Audit log")
    if admin_page("audit.read") is None:
        return
    c = st.columns(3)
    actor = c[0].text_input("Actor", key="audit_actor").strip() or None
    action = c[1].text_input("Action (e.g. alert.label)", key="audit_action").strip() or None
    target = c[2].text_input("Target (e.g. alert:12)", key="audit_target").strip() or None
    try:
        found = audit.entries(state.store(), actor=actor, action=action, target=target, limit=LIMIT)
    except PlantcastError as exc:
        st.error(str(exc))
        return
    st.session_state["audit_rows"] = [(e.actor, e.action, e.target) for e in found]  # for tests
    if not found:
        st.info("No entries match.")
        return
    rows = pd.DataFrame(
        {
            "at (UTC)": [f"{e.at:%Y-%m-%d %H:%M:%S}" for e in found],
            "actor": [e.actor for e in found],
            "action": [e.action for e in found],
            "target": [e.target for e in found],
            "before": [_json(e.before) for e in found],
            "after": [_json(e.after) for e in found],
        }
    )
    st.dataframe(rows, hide_index=True, key="audit_table")
    more = " (the newest shown: narrow the filters)" if len(found) == LIMIT else ""
    st.caption(f"{len(found)} entries, newest first{more}.")


render()
