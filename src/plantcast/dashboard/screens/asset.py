"""The Asset page: one asset's sensors together (``?asset=NAME`` chooses it): their traces
normalized on one axis, the asset's score with its threshold and its alerts, and each sensor's
share of the score over time (which sensors break the asset's relations)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import format_duration
from plantcast.dashboard import state
from plantcast.dashboard.charts import asset_figures
from plantcast.services.views import asset_view

WINDOWS = {"6 hours": "6h", "1 day": "1d", "3 days": "3d", "7 days": "7d"}


def render() -> None:
    st.title("Asset")
    names = state.load(lambda: [a.name for a in state.store().list_assets()])
    if names is None:
        return
    store = state.store()
    if not names:
        st.info("No assets yet: `plantcast asset create NAME --sensor S --sensor T` makes one.")
        return
    asked = st.query_params.get("asset")
    name = st.selectbox(
        "Asset", names, index=names.index(asked) if asked in names else 0, key="asset_name"
    )
    st.query_params["asset"] = name
    window = st.selectbox("Window", list(WINDOWS), index=1, key="asset_window")
    try:
        view = asset_view(store, name, pd.Timedelta(WINDOWS[window]))
    except PlantcastError as exc:
        st.error(str(exc))
        return
    st.session_state["asset_view"] = {
        "asset": name,
        "rows": len(view.normalized),
        "scored": int(view.score.notna().sum()),
        "alerts": len(view.alerts),
        "why": view.why,
    }
    if view.end is None:
        st.info(f"{name}: {view.why}.")
        return
    sensors = ", ".join(view.asset.sensor_names)
    step = format_duration(view.asset.grid_step)
    st.caption(f"{sensors} on a {step} grid, up to {view.end:%Y-%m-%d %H:%M} UTC")
    traces, score, shares = asset_figures(view)
    st.plotly_chart(traces, key="asset_traces")
    if view.why:
        st.info(view.why)
    else:
        st.plotly_chart(score, key="asset_score")
        st.plotly_chart(shares, key="asset_shares")
    if view.alerts:
        rows = pd.DataFrame(
            {
                "id": [a.id for a in view.alerts],
                "start (UTC)": [f"{a.ts:%Y-%m-%d %H:%M}" for a in view.alerts],
                "end": [
                    "ongoing" if a.ends_at is None else f"{a.ends_at:%Y-%m-%d %H:%M}"
                    for a in view.alerts
                ],
                "contributors": [
                    ", ".join(f"{s} {100 * v:.0f}%" for s, v in list(a.contributors.items())[:3])
                    for a in view.alerts
                ],
                "status": [a.status.value for a in view.alerts],
            }
        )
        st.dataframe(rows, hide_index=True, key="asset_alerts")
    else:
        st.caption(f"No alerts of {name} in this window.")


render()
