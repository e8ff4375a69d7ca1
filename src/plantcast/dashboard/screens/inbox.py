"""The Alerts inbox page: the alerts of every sensor, newest first, filtered by status."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.core.types import AlertStatus
from plantcast.dashboard import state


def render() -> None:
    st.title("Alerts inbox")
    statuses = [s.value for s in AlertStatus]
    status = st.selectbox("Status", ["any", *statuses], index=1, key="inbox_status")
    try:
        store = state.store()
        names = {s.id: s.name for s in store.list_sensors()}
        assets = store.asset_names()
        alerts = store.list_alerts(status=None if status == "any" else status, limit=200)
    except StoreUnavailable as exc:
        st.error(f"Cannot reach the database: {exc}")
        return
    except PlantcastError as exc:
        st.error(str(exc))
        return
    st.session_state["inbox"] = [a.id for a in alerts]
    if not alerts:
        st.info(f"No {'' if status == 'any' else status + ' '}alerts.")
        return
    rows = pd.DataFrame(
        {
            "id": [a.id for a in alerts],
            "sensor": [
                names.get(a.sensor_id, "–")
                if a.sensor_id is not None
                else f"asset {assets.get(a.asset_id or 0, '?')}"
                for a in alerts
            ],
            "detectors": [
                ", ".join(f"{d} {v:.1f}" for d, v in a.detectors.items()) for a in alerts
            ],
            "start (UTC)": [f"{a.ts:%Y-%m-%d %H:%M}" for a in alerts],
            "status": [a.status.value for a in alerts],
        }
    )
    st.dataframe(rows, hide_index=True, key="inbox_table")


render()
