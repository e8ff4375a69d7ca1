"""The Silences page: maintenance windows now and ahead (or all), a new one for a sensor, an
asset or everything (a duration, or weekly windows), and ending one early. Operators and
admins change them (plantcast.services.silences, one audit entry each)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.dashboard import state
from plantcast.dashboard.identity import Person, person, read_only_note
from plantcast.services import users
from plantcast.services.silences import add_silence, end_silence, list_silences


def _when(ts: pd.Timestamp | None) -> str:
    return "–" if ts is None else f"{ts:%Y-%m-%d %H:%M}"


def _listing(include_past: bool) -> list[int]:
    found = list_silences(state.store(), include_past=include_past)
    st.session_state["silences"] = [s.id for s in found]  # read by tests
    if not found:
        st.info("No silence now or ahead.")
        return []
    rows = pd.DataFrame(
        {
            "id": [s.id for s in found],
            "scope": [s.scope for s in found],
            "target": [s.target or "everything" for s in found],
            "from (UTC)": [_when(s.starts_at) for s in found],
            "until (UTC)": [_when(s.until) for s in found],
            "weekly": [s.recurrence or "" for s in found],
            "reason": [s.reason for s in found],
            "author": [s.author for s in found],
        }
    )
    st.dataframe(rows, hide_index=True, key="silences_table")
    return [s.id for s in found if s.ended_at is None]


def _add(who: Person, sensors: list[str], assets: list[str]) -> None:
    off = not who.can("silence.add")
    st.subheader("New silence")
    choices = ["sensor", "asset", "everything"]
    scope = st.radio("Silence", choices, horizontal=True, key="sil_scope", disabled=off)
    target = None
    if scope == "sensor":
        target = st.selectbox("Sensor", sensors, key="sil_sensor", disabled=off)
    elif scope == "asset":
        target = st.selectbox("Asset", assets, key="sil_asset", disabled=off)
    hint = "A duration: 30min, 2h, 1d. Empty with a weekly window."
    duration = st.text_input("For (from now)", "2h", key="sil_duration", disabled=off, help=hint)
    every = st.text_input(
        "Or weekly", "", key="sil_every", disabled=off, placeholder="sat 06:00 8h"
    )
    reason = st.text_input("Reason", key="sil_reason", disabled=off)
    if st.button("Add silence", key="sil_add", disabled=off):
        try:
            users.require(who.role, "silence.add", who.name)
            made = add_silence(
                state.store(),
                reason=reason,
                author=who.name,
                sensor=target if scope == "sensor" else None,
                asset=target if scope == "asset" else None,
                everything=scope == "everything",
                duration=None if every.strip() else (duration.strip() or None),
                every=every.strip() or None,
            )
        except PlantcastError as exc:
            st.error(str(exc))
            return
        st.session_state["sil_message"] = f"silence {made.id} added"
        st.rerun()


def _end(who: Person, ids: list[int]) -> None:
    off = not who.can("silence.end")
    st.subheader("End a silence early")
    if not ids:
        st.caption("No silence to end.")
        return
    chosen = st.selectbox("Silence", ids, key="sil_end_id", disabled=off)
    if st.button("End now", key="sil_end", disabled=off) and chosen is not None:
        try:
            users.require(who.role, "silence.end", who.name)
            end_silence(state.store(), int(chosen), author=who.name)
        except PlantcastError as exc:
            st.error(str(exc))
            return
        st.session_state["sil_message"] = f"silence {chosen} ended"
        st.rerun()


def render() -> None:
    st.title("Silences")
    loaded = state.load(
        lambda: (
            [s.name for s in state.store().list_sensors()],
            [a.name for a in state.store().list_assets()],
            person(),
        )
    )
    if loaded is None:
        return
    sensors, assets, who = loaded
    st.caption(
        "Inside a silence, detection still records alerts (marked silenced) but no "
        "notification leaves; the sensor's chart shades the window."
    )
    if message := st.session_state.pop("sil_message", None):
        st.success(message)
    include_past = st.checkbox("Show past silences too", key="sil_past")
    ids = _listing(include_past)
    read_only_note(who, "silence.add")
    left, right = st.columns(2)
    with left:
        _add(who, sensors, assets)
    with right:
        _end(who, ids)


render()
