"""The Alerts inbox page: every alert, filtered by status, sensor, detector, label, assignee
and time; acknowledge, resolve, assign, label and comment, one alert or many at once."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.core.types import AlertStatus
from plantcast.dashboard import state
from plantcast.dashboard.identity import Person, person, read_only_note
from plantcast.dashboard.state import REFRESH
from plantcast.services import alert_workflow, users
from plantcast.services.inbox import InboxRow, inbox, parse_since

STATUSES = ["open", "acknowledged", "resolved", "any"]
SINCE = {"24 hours": "24h", "7 days": "7d", "30 days": "30d", "all time": "all"}
LABELS = ["any", *alert_workflow.LABELS]


def _filters(sensors: list[str]) -> dict:
    c = st.columns([2, 2, 2, 2, 2, 2])
    return {
        "status": c[0].selectbox("Status", STATUSES, key="inbox_status"),
        "sensor": c[1].selectbox("Sensor", ["any", *sensors], key="inbox_sensor"),
        "detector": c[2].text_input("Detector", key="inbox_detector"),
        "label": c[3].selectbox("Label", LABELS, key="inbox_label"),
        "assignee": c[4].text_input("Assignee", key="inbox_assignee"),
        "since": c[5].selectbox("Since", list(SINCE), index=3, key="inbox_since"),
    }


def _table(rows: list[InboxRow]) -> pd.DataFrame:
    a = [r.alert for r in rows]
    return pd.DataFrame(
        {
            "id": [x.id for x in a],
            "source": [r.source for r in rows],
            "detectors": [", ".join(f"{d} {v:.1f}" for d, v in x.detectors.items()) for x in a],
            "start (UTC)": [f"{x.ts:%Y-%m-%d %H:%M}" for x in a],
            "end": ["ongoing" if x.ends_at is None else f"{x.ends_at:%Y-%m-%d %H:%M}" for x in a],
            "status": [x.status.value for x in a],
            "assignee": [x.assignee or "" for x in a],
            "label": ["" if x.label is None else str(x.label) for x in a],
            "silenced": [x.silenced for x in a],
        }
    )


def _picked_from_table() -> None:
    """Rows chosen in the table become the alerts the actions apply to."""
    ids = st.session_state.get("inbox_shown", [])
    rows = st.session_state["inbox_table"].selection.rows
    st.session_state["inbox_ids"] = [ids[i] for i in rows if i < len(ids)]


def _act(who: Person, action: str, ids: list[int], value: str | None = None) -> None:
    try:
        users.require(who.role, f"alert.{action}", who.name)
        n = alert_workflow.apply(state.store(), action, ids, actor=who.name, value=value)
    except PlantcastError as exc:
        st.session_state["inbox_message"] = ("error", str(exc))
        return
    st.session_state["inbox_message"] = ("success", f"{action}: {n} alert(s)")
    st.rerun()  # the list shows the change at once


def _actions(who: Person, ids: list[int]) -> None:
    allowed = who.can("alert.acknowledge")
    off = not allowed or not ids
    st.markdown(f"**{len(ids)} alert(s) chosen**" if ids else "Choose alerts in the table.")
    read_only_note(who, "alert.acknowledge")
    b = st.columns(4)
    if b[0].button("Acknowledge", key="inbox_ack", disabled=off):
        _act(who, "acknowledge", ids)
    if b[1].button("Resolve", key="inbox_resolve", disabled=off):
        _act(who, "resolve", ids)
    with b[2]:
        names = [u.name for u in users.list_users(state.store()) if u.active]
        if who.name not in names:
            names.insert(0, who.name)
        user = st.selectbox("Assign to", names, key="inbox_assign_to", disabled=off)
        if st.button("Assign", key="inbox_assign", disabled=off):
            _act(who, "assign", ids, user)
    with b[3]:
        label = st.selectbox("Label", alert_workflow.LABELS, key="inbox_label_as", disabled=off)
        if st.button("Label", key="inbox_label_go", disabled=off):
            _act(who, "label", ids, label)
    text = st.text_area("Comment", key="inbox_comment", disabled=off, height=80)
    if st.button("Add comment", key="inbox_comment_go", disabled=off):
        _act(who, "comment", ids, text)


def _detail(alert_id: int) -> None:
    d = alert_workflow.detail(state.store(), alert_id)
    with st.expander(f"Alert {alert_id}: comments and history", expanded=True):
        for c in d.comments:
            st.markdown(f"**{c.author}** · {c.at:%Y-%m-%d %H:%M} UTC  \n{c.text}")
        if not d.comments:
            st.caption("No comments yet.")
        for h in d.history:
            st.caption(f"{h.at:%Y-%m-%d %H:%M:%S} {h.actor}: {h.action} {h.after or ''}")


@st.fragment(run_every=REFRESH)
def _live(who: Person, sensors: list[str]) -> None:
    f = _filters(sensors)
    try:
        rows = inbox(
            state.store(),
            status=None if f["status"] == "any" else AlertStatus(f["status"]),
            sensor=None if f["sensor"] == "any" else f["sensor"],
            detector=f["detector"],
            label=None if f["label"] == "any" else f["label"],
            assignee=f["assignee"],
            since=parse_since(SINCE[f["since"]]),
        )
    except StoreUnavailable as exc:
        st.warning(f"The database is not reachable; retrying every {REFRESH}. ({exc})")
        return
    except PlantcastError as exc:
        st.error(str(exc))
        return
    ids = [r.alert.id for r in rows]
    st.session_state["inbox_shown"] = ids
    st.session_state["inbox"] = ids  # read by tests
    if "inbox_ids" in st.session_state:  # alerts that left the list cannot stay chosen
        st.session_state["inbox_ids"] = [i for i in st.session_state["inbox_ids"] if i in ids]
    if kind_text := st.session_state.pop("inbox_message", None):
        (st.error if kind_text[0] == "error" else st.success)(kind_text[1])
    if not rows:
        st.info("No alert matches these filters.")
        return
    st.dataframe(
        _table(rows),
        hide_index=True,
        key="inbox_table",
        on_select=_picked_from_table,
        selection_mode="multi-row",
    )
    st.caption(f"{len(rows):,} alert(s), newest first; refreshed every {REFRESH}.")
    chosen = st.multiselect(
        "Alerts to act on",
        ids,
        key="inbox_ids",
        format_func=lambda i: f"#{i}",
        help="Choose rows in the table, or pick ids here.",
    )
    _actions(who, [i for i in chosen if i in ids])
    if len(chosen) == 1:
        _detail(chosen[0])


def render() -> None:
    st.title("Alerts inbox")
    loaded = state.load(lambda: ([s.name for s in state.store().list_sensors()], person()))
    if loaded is None:
        return
    sensors, who = loaded
    st.caption(f"Signed in as {who.name} ({who.role}).")
    _live(who, sensors)


render()
