"""The Plant overview page: every sensor's status, latest value, age, open alerts and a 24 h
sparkline, worst first, with search and a status filter; choosing a row opens its Sensor page.
Below, every asset (alerting first) with its own alerts; choosing one opens its Asset page."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from plantcast.core.errors import PlantcastError, StoreUnavailable
from plantcast.dashboard import state
from plantcast.dashboard.state import REFRESH
from plantcast.services.overview import (
    PAGE_SIZE,
    SPARK_SPAN,
    STATUSES,
    Overview,
    asset_overview,
    overview,
)

COLORS = {
    "alerting": "color: #c0392b; font-weight: bold",
    "stale": "color: #d35400",
    "no data": "color: #7f8c8d",
    "silenced": "color: #2874a6",
    "ok": "color: #1e8449",
}


def _age(td: pd.Timedelta | None) -> str:
    if td is None:
        return "–"
    s = td.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"


def _table(ov: Overview) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": [r.status for r in ov.rows],
            "sensor": [r.name for r in ov.rows],
            "latest": [
                "–" if r.latest_value is None else f"{r.latest_value:,.2f} {r.unit}".rstrip()
                for r in ov.rows
            ],
            "age": [_age(r.age) for r in ov.rows],
            "open alerts": [r.open_alerts for r in ov.rows],
            "acknowledged": [r.acknowledged_alerts for r in ov.rows],
            "last 24 h": [[v for v in r.sparkline if v is not None] for r in ov.rows],
        }
    )


@st.fragment(run_every=REFRESH)
def _live(search: str, statuses: list[str], page: int) -> None:
    try:
        ov = overview(state.store(), search=search, statuses=statuses, page=page)
    except StoreUnavailable as exc:
        st.warning(f"The database is not reachable; retrying every {REFRESH}. ({exc})")
        return
    except PlantcastError as exc:
        st.error(str(exc))
        return
    for col, status in zip(st.columns(len(STATUSES)), STATUSES, strict=True):
        col.metric(status, ov.counts[status])
    st.session_state["overview"] = {
        "sensors": [r.name for r in ov.rows],
        "statuses": {r.name: r.status for r in ov.rows},
        "counts": ov.counts,
        "matching": ov.matching,
    }
    if not ov.rows:
        st.info("No sensor matches the search and status filter on this page.")
        return
    event = st.dataframe(
        _table(ov).style.map(lambda v: COLORS.get(v, ""), subset=["status"]),
        hide_index=True,
        key="overview_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "last 24 h": st.column_config.LineChartColumn(
                f"last {SPARK_SPAN.total_seconds() / 3600:.0f} h", width="medium"
            ),
            "open alerts": st.column_config.NumberColumn(format="%d"),
        },
    )
    rows = event.selection.rows
    first = page * PAGE_SIZE + 1
    st.caption(
        f"Sensors {first:,}–{first + len(ov.rows) - 1:,} of {ov.matching:,}, worst first; "
        f"refreshed every {REFRESH}. Choose a row to open its page."
    )
    if rows:
        name = ov.rows[rows[0]].name
        st.switch_page("screens/sensor.py", query_params={"sensor": name})


@st.fragment(run_every=REFRESH)
def _assets() -> None:
    try:
        found = asset_overview(state.store())
    except PlantcastError:  # the sensors' table above already says what is wrong
        return
    st.session_state["overview_assets"] = {a.name: a.status for a in found}  # read by tests
    if not found:
        return
    st.subheader("Assets")
    rows = pd.DataFrame(
        {
            "status": [a.status for a in found],
            "asset": [a.name for a in found],
            "sensors": [a.sensors for a in found],
            "open alerts": [a.open_alerts for a in found],
            "acknowledged": [a.acknowledged_alerts for a in found],
            "sensors alerting": [a.alerting_sensors for a in found],
        }
    )
    event = st.dataframe(
        rows.style.map(lambda v: COLORS.get(v, ""), subset=["status"]),
        hide_index=True,
        key="overview_assets_table",
        on_select="rerun",
        selection_mode="single-row",
    )
    st.caption("Assets, alerting first. Choose a row to open its page.")
    if event.selection.rows:
        name = found[event.selection.rows[0]].name
        st.switch_page("screens/asset.py", query_params={"asset": name})


def render() -> None:
    st.title("Plant overview")
    total = state.load(lambda: len(state.store().list_sensors()))
    if total is None:
        return
    if not total:
        st.info("The database has no sensors yet. Run `plantcast demo` or `plantcast backfill`.")
        return
    left, mid, right = st.columns([3, 3, 1])
    search = left.text_input("Search sensors", key="ov_search", placeholder="name contains…")
    statuses = mid.multiselect("Status", list(STATUSES), key="ov_status")
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = right.number_input("Page", 1, pages, 1, key="ov_page") if pages > 1 else 1
    _live(search, statuses, int(page) - 1)
    _assets()


render()
