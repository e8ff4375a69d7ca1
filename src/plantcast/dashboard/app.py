"""The live dashboard page: `streamlit run` this file (or `plantcast dashboard`)."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.dashboard.charts import history_figure
from plantcast.services.context import open_store
from plantcast.services.views import sensor_window

WINDOWS = {
    "6 hours": "6h",
    "1 day": "1d",
    "3 days": "3d",
    "7 days": "7d",
    "28 days": "28d",
    "90 days": "90d",
    "1 year": "365d",
}
REFRESH = f"{float(os.environ.get('PLANTCAST_REFRESH_SECONDS', '5'))}s"


@st.cache_resource(show_spinner=False)
def _store(url: str | None):
    return open_store(url, init=True)


def _sidebar(sensors) -> dict:
    st.sidebar.header("plantcast")
    names = [s.name for s in sensors]
    name = st.sidebar.selectbox("Sensor", names, key="sensor")
    window = st.sidebar.selectbox("Time window", list(WINDOWS), index=2, key="window")
    smoothing = st.sidebar.slider("Smoothing window (readings)", 1, 48, 5, key="smoothing")
    return {
        "sensor": next(s for s in sensors if s.name == name),
        "window": pd.Timedelta(WINDOWS[window]),
        "smoothing": smoothing,
    }


@st.fragment(run_every=REFRESH)
def live_chart(store, controls: dict) -> None:
    try:
        view = sensor_window(
            store, controls["sensor"], controls["window"], smoothing=controls["smoothing"]
        )
    except StoreUnavailable as exc:
        st.warning(f"The database is not reachable right now; retrying every {REFRESH}. ({exc})")
        return
    if view.empty:
        st.info("This sensor has no readings yet. Start the streamer: `plantcast stream`.")
        return
    ts, value = view.latest
    first = view.buckets["mean"].iloc[0]
    unit = view.sensor.unit
    c1, c2, c3 = st.columns(3)
    c1.metric("Latest value", f"{value:,.2f} {unit}")
    c2.metric("Change over window", f"{value - first:+,.2f} {unit}")
    c3.metric("Latest reading (UTC)", f"{ts:%Y-%m-%d %H:%M}")
    st.plotly_chart(history_figure(view), use_container_width=True, key="history")
    st.caption(
        f"{len(view.buckets):,} points"
        + (" (downsampled in SQL: bucket mean with min–max band)" if view.downsampled else "")
        + f"; refreshed every {REFRESH}."
    )


def main() -> None:
    st.set_page_config(page_title="plantcast", layout="wide")
    st.title("plantcast")
    try:
        store = _store(None)
        sensors = store.list_sensors()
    except StoreUnavailable as exc:
        st.error(f"Cannot reach the database: {exc}")
        st.button("Retry")
        return
    except PlantcastError as exc:
        st.error(str(exc))
        return
    if not sensors:
        st.info("The database has no sensors yet. Run `plantcast demo` or `plantcast backfill`.")
        return
    live_chart(store, _sidebar(sensors))


main()
