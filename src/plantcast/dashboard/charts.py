"""Plotly figures for the dashboard, built from service results (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go

from plantcast.services.views import WindowView

RAW = "#7f8c9a"
SMOOTH = "#1f77b4"


def history_figure(view: WindowView) -> go.Figure:
    """Raw readings (with a min–max band when downsampled) and the rolling mean."""
    fig = go.Figure()
    b = view.buckets
    if view.downsampled:
        fig.add_trace(
            go.Scatter(
                x=b.index,
                y=b["max"],
                mode="lines",
                line={"width": 0},
                name="max",
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=b.index,
                y=b["min"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(127,140,154,0.25)",
                name="min–max",
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=b.index,
            y=b["mean"],
            mode="lines",
            name="raw" + (" (bucket mean)" if view.downsampled else ""),
            line={"color": RAW, "width": 1},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=view.smoothed.index,
            y=view.smoothed.to_numpy(),
            mode="lines",
            name="smoothed",
            line={"color": SMOOTH, "width": 2},
        )
    )
    unit = f" ({view.sensor.unit})" if view.sensor.unit else ""
    fig.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title=f"{view.sensor.name}{unit}",
        legend={"orientation": "h", "y": 1.08},
        uirevision=view.sensor.name,  # keep zoom and legend state across live refreshes
        hovermode="x unified",
    )
    return fig
