"""Page sections besides the chart: injections, the models panel and the alerts panel."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import parse_duration
from plantcast.core.types import Alert, AlertStatus, EventKind, Sensor, Source
from plantcast.dashboard import state
from plantcast.dashboard.identity import person, read_only_note
from plantcast.services import alert_workflow
from plantcast.services.injection import DEMO_SPIKE_MAGNITUDE, inject, normalize
from plantcast.services.live import LiveRequest
from plantcast.services.notes import annotate


def injection_controls(sensor: Sensor) -> None:
    """The demo's two buttons and the other kinds, for simulated sensors only."""
    if sensor.source is not Source.SIMULATED:
        st.sidebar.caption(f"{sensor.name} holds {sensor.source.value} data: no injection.")
        return
    who = person()
    if not who.can("event.inject"):
        return  # a viewer changes nothing
    sb = st.sidebar
    sb.subheader("Inject anomalies")
    sb.caption("These change the stored data: every viewer and every detector sees them.")
    try:
        if sb.button("Simulate Pressure Spike", key="spike", width="stretch"):
            inject(
                state.store(),
                sensor.name,
                EventKind.LEVEL_SHIFT,
                magnitude=DEMO_SPIKE_MAGNITUDE,
                note="dashboard: simulate spike",
                actor=who.name,
            )
            sb.success(f"+{DEMO_SPIKE_MAGNITUDE:g} from the next reading on")
        if sb.button("Normalize Pressure", key="normalize", width="stretch"):
            n = normalize(state.store(), sensor.name, actor=who.name)
            sb.success(f"ended {n} event(s)")
        with sb.expander("Other injections"):
            kind = st.selectbox("Kind", [k.value for k in EventKind], key="inject_kind")
            magnitude = st.number_input("Magnitude", value=10.0, key="inject_magnitude")
            duration = st.text_input("Duration (empty: until normalized)", "", key="inject_dur")
            if st.button("Inject", key="inject_go"):
                dur = parse_duration(duration, field="duration") if duration.strip() else None
                ev = inject(
                    state.store(),
                    sensor.name,
                    kind,
                    magnitude=magnitude,
                    duration=dur,
                    note="dashboard",
                    actor=who.name,
                )
                st.success(f"event {ev.id}: {ev.kind.value}")
    except PlantcastError as exc:
        sb.error(str(exc))


def models_panel(request: LiveRequest) -> None:
    """Backtest metrics per model, from the background board (never computed on refresh).

    Drawn by the live section, so finished scores appear at its next refresh.
    """
    st.subheader("Models")
    if not request.models:
        st.caption("Choose models in the sidebar.")
        return
    force = st.button("Recompute backtests", key="recompute")
    last_ts = state.store().last_timestamp(request.sensor.id)
    entry = state.model_board().get(
        state.store(), request.sensor.name, request.models, request.spec, last_ts, force=force
    )
    if entry.table is not None:
        shown = entry.table.rename(
            columns={
                "mae": "MAE",
                "rmse": "RMSE",
                "mase": "MASE",
                "smape": "sMAPE %",
                "coverage_80": "cover 80 %",
                "coverage_95": "cover 95 %",
            }
        )
        st.dataframe(shown.style.format("{:.3f}"), key="metrics")
        st.caption(
            f"Rolling-origin backtest ({request.spec.windows} origins) on data up to "
            f"{entry.as_of:%Y-%m-%d %H:%M} UTC. MASE < 1 beats the seasonal naive forecast; "
            "coverage is the share of actuals inside the conformal band."
        )
    if entry.auto_choice is not None:
        st.caption(f"auto chose **{entry.auto_choice}** by backtest MASE on this sensor:")
        scores = pd.Series(entry.auto_scores, name="MASE").rename_axis("candidate or blend")
        st.dataframe(scores.to_frame().style.format("{:.3f}"), key="auto_scores")
    if entry.failed:
        for name, why in entry.failed.items():
            st.caption(f"{name}: {why}")
    if entry.error:
        st.warning(f"Backtest failed: {entry.error}")
    if entry.computing:
        st.caption("Backtesting in the background…")


def alerts_panel(sensor: Sensor, open_alerts: list[Alert] | None = None) -> None:
    """The sensor's open alerts, to acknowledge; drawn by the live section on every refresh
    from the same read as its "Open alerts" figure (``open_alerts``; None: read them here)."""
    with st.container(key="alerts_panel"):
        _alerts_panel(sensor, open_alerts)


def _alerts_panel(sensor: Sensor, alerts: list[Alert] | None) -> None:
    st.subheader("Alerts")
    store = state.store()
    if alerts is None:
        alerts = store.list_alerts(sensor_id=sensor.id, status=AlertStatus.OPEN, limit=50)
    if not alerts:
        st.caption(f"No open alerts on {sensor.name}.")
        return
    rows = pd.DataFrame(
        [
            {
                "id": a.id,
                "detectors": ", ".join(f"{d} {s:.1f}" for d, s in a.detectors.items()),
                "start (UTC)": f"{a.ts:%Y-%m-%d %H:%M}",
                "end": "ongoing" if a.ends_at is None else f"{a.ends_at:%Y-%m-%d %H:%M}",
                "value": round(a.value, 2),
            }
            for a in alerts
        ]
    )
    st.dataframe(rows, hide_index=True, key="alerts_table")
    ids = [a.id for a in alerts]
    who = person()
    allowed = who.can("alert.acknowledge")
    chosen = st.selectbox("Alert", ids, key="ack_id", disabled=not allowed)
    read_only_note(who, "alert.acknowledge")
    if st.button("Acknowledge", key="ack", disabled=not allowed):
        alert_workflow.acknowledge(store, [int(chosen)], actor=who.name)
        st.rerun()


def note_controls(sensor: Sensor) -> None:
    """A note on the sensor's chart ("seal replaced on pump 3"), now or over the last while;
    for operators and admins, audited under their name."""
    who = person()
    if not who.can("annotation.add"):
        return
    with st.sidebar.expander("Add a note"):
        text = st.text_input("Note", key="note_text", placeholder="seal replaced on pump 3")
        over = st.text_input("Over the last (empty: a mark now)", "", key="note_over")
        if st.button("Add note", key="note_add"):
            try:
                end = pd.Timestamp.now(tz="UTC")
                span = parse_duration(over, field="over the last") if over.strip() else None
                made = annotate(
                    state.store(),
                    sensor.name,
                    text,
                    author=who.name,
                    at=end - span if span is not None else end,
                    end=end if span is not None else None,
                )
                st.success(f"note {made.id} added")
            except PlantcastError as exc:
                st.error(str(exc))
