"""The Sensor page: one sensor live (chart, forecasts, models, alerts); ``?sensor=NAME`` in the
address chooses it, and choosing another puts its name there."""

from __future__ import annotations

import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.dashboard import state
from plantcast.dashboard.charts import live_figure
from plantcast.dashboard.controls import Controls, sidebar
from plantcast.dashboard.panels import (
    alerts_panel,
    injection_controls,
    models_panel,
    note_controls,
)
from plantcast.dashboard.state import REFRESH
from plantcast.services.live import LiveFrame, refresh
from plantcast.services.overlays import chart_overlays


def _summary(live, controls: Controls) -> None:
    """Figures above the chart, and a record of what was computed (read by tests)."""
    ts, value = live.view.latest
    first = live.view.buckets["mean"].iloc[0]
    unit = live.view.sensor.unit
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Latest value", f"{value:,.2f} {unit}")
    c2.metric("Change over window", f"{value - first:+,.2f} {unit}")
    c3.metric("Open alerts", live.open_alerts)
    c4.metric("Latest reading (UTC)", f"{ts:%b %d, %H:%M}")
    st.session_state["computed"] = {
        "sensor": live.view.sensor.name,
        "points": len(live.view.buckets),
        "forecast_lengths": {m: len(r.frame) for m, r in live.forecasts.items()},
        "features": {m: r.n_features for m, r in live.forecasts.items()},
        "events": len(live.events),
        "alerts": len(live.alerts),
    }


@st.fragment(run_every=REFRESH)
def live_section(controls: Controls) -> None:
    """Everything that follows the data, redrawn together on every refresh: the figures, the
    chart, and below them the models and alerts panels (so "Open alerts" and the alerts table
    always come from the same refresh)."""
    live = _chart(controls)
    left, right = st.columns([3, 2])
    with left:
        try:
            models_panel(controls.request)
        except StoreUnavailable:
            st.caption("Models panel waits for the database.")
    with right:
        try:
            alerts_panel(controls.request.sensor, None if live is None else live.open_list)
        except StoreUnavailable:
            st.caption("Alerts panel waits for the database.")


def _chart(controls: Controls) -> LiveFrame | None:
    """The figures and the chart; the refresh they came from (None if there was none)."""
    req = controls.request
    try:
        live = refresh(state.store(), state.forecasting(), req)
    except StoreUnavailable as exc:
        st.warning(f"The database is not reachable; retrying every {REFRESH}. ({exc})")
        return None
    except PlantcastError as exc:
        st.error(str(exc))
        return None
    if live.view.empty:
        st.info(f"{req.sensor.name} has no readings yet. Start the streamer: `plantcast stream`.")
        return live
    _summary(live, controls)
    try:  # silences, annotations and limits drawn over the chart
        overlays = chart_overlays(state.store(), req.sensor.name, live.view.start, live.view.end)
    except PlantcastError as exc:
        st.caption(f"No silences, annotations or limits drawn: {exc}")
        overlays = None
    st.session_state["overlays"] = None if overlays is None else {
        "silences": len(overlays.silences),
        "annotations": [n.text for n in overlays.annotations],
        "limits": {} if overlays.limits is None else overlays.limits.levels(),
    }  # fmt: skip
    st.plotly_chart(live_figure(live, controls.level, overlays), key="live_chart")
    for name, why in live.problems.items():
        st.caption(f"No forecast from {name}: {why}")
    if live.stored is not None:  # kept ready by `plantcast forecast refresh`
        (st.warning if live.stored.stale else st.caption)(f"Stored forecast: {live.stored.note()}")
    detail = " (downsampled in SQL: bucket mean with min–max band)" if live.view.downsampled else ""
    st.caption(f"{len(live.view.buckets):,} points{detail}; refreshed every {REFRESH}.")
    return live


def _sensor_from_address(names: list[str]) -> None:
    """``?sensor=NAME`` (a link from the overview) selects that sensor once; the sidebar's
    choice is written back to the address so it can be shared."""
    wanted = st.query_params.get("sensor")
    if wanted in names and st.session_state.get("sensor_from_address") != wanted:
        st.session_state["sensor"] = wanted
        st.session_state["sensor_from_address"] = wanted
        st.session_state.pop("periods", None)  # the sensor's own seasons


def render() -> None:
    st.title("Sensor")
    sensors = state.load(lambda: state.store().list_sensors())
    if sensors is None:
        return
    if not sensors:
        st.info("The database has no sensors yet. Run `plantcast demo` or `plantcast backfill`.")
        return
    _sensor_from_address([s.name for s in sensors])
    controls = sidebar(sensors)
    if controls is None:
        return
    name = controls.request.sensor.name
    st.query_params["sensor"] = name
    st.session_state["sensor_from_address"] = name
    injection_controls(controls.request.sensor)
    note_controls(controls.request.sensor)
    live_section(controls)


render()
