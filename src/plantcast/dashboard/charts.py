"""Plotly figures for the dashboard, built from service results (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go

from plantcast.services.live import LiveFrame
from plantcast.services.overlays import Overlays
from plantcast.services.views import AssetView

RAW = "#7f8c9a"
SMOOTH = "#1f77b4"
MODEL_COLORS = {
    "fourier_linear": "#2ca02c",
    "svr": "#d62728",
    "random_forest": "#9467bd",
    "seasonal_naive": "#8c564b",
    "mstl": "#e377c2",
    "ets": "#17becf",
    "auto": "#ff7f0e",
}
EVENT_FILL = "rgba(255,165,0,0.15)"
SILENCE_FILL = "rgba(40,116,166,0.12)"
NOTE_COLOR = "#6c3483"
LIMIT_STYLE = {  # low-low and high-high solid, low and high dashed
    "low_low": ("#c0392b", "solid"),
    "low": ("#d68910", "dash"),
    "high": ("#d68910", "dash"),
    "high_high": ("#c0392b", "solid"),
}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _band(fig: go.Figure, x, lower, upper, fill: str, name: str, group: str | None = None):
    """A filled band between two lines (drawn as an invisible upper line, then fill to it)."""
    edge = {"mode": "lines", "line": {"width": 0}, "legendgroup": group, "hoverinfo": "skip"}
    fig.add_trace(go.Scatter(x=x, y=upper, showlegend=False, name=f"{name} upper", **edge))
    fig.add_trace(go.Scatter(x=x, y=lower, fill="tonexty", fillcolor=fill, name=name, **edge))


def _history(fig: go.Figure, live: LiveFrame) -> None:
    view, b = live.view, live.view.buckets
    if view.downsampled:  # min/max kept so a spike inside a bucket stays visible
        _band(fig, b.index, b["min"], b["max"], "rgba(127,140,154,0.25)", "min–max")
    label = "raw (bucket mean)" if view.downsampled else "raw"
    line = {"color": RAW, "width": 1}
    fig.add_trace(go.Scatter(x=b.index, y=b["mean"], mode="lines", name=label, line=line))
    s = view.smoothed
    line = {"color": SMOOTH, "width": 2}
    fig.add_trace(go.Scatter(x=s.index, y=s.to_numpy(), mode="lines", name="smoothed", line=line))


def _forecasts(fig: go.Figure, live: LiveFrame, level: int | None) -> None:
    for name, result in live.forecasts.items():
        color = MODEL_COLORS.get(name, "#333333")
        f = result.frame
        label = name if result.chosen == name else f"{name} → {result.chosen}"
        lo, hi = f"lower_{level}", f"upper_{level}"
        if level is not None and lo in f.columns:
            _band(fig, f.index, f[lo], f[hi], _rgba(color, 0.15), f"{label} {level}%", name)
        line = {"color": color, "width": 2, "dash": "dash"}
        fig.add_trace(
            go.Scatter(
                x=f.index,
                y=f["mean"],
                mode="lines",
                legendgroup=name,
                name=f"forecast · {label}",
                line=line,
            )
        )


def _events_and_alerts(fig: go.Figure, live: LiveFrame) -> None:
    end = live.view.end
    for ev in live.events:
        x1 = ev.ends_at if ev.ends_at is not None else end
        x1 = max(x1, ev.starts_at + live.view.sensor.interval / 2)
        fig.add_vrect(
            x0=ev.starts_at,
            x1=x1,
            fillcolor=EVENT_FILL,
            line_width=0,
            layer="below",
            annotation_text=ev.kind.value,
            annotation_position="top left",
        )
    if live.alerts:
        fig.add_trace(
            go.Scatter(
                x=[a.ts for a in live.alerts],
                y=[a.value for a in live.alerts],
                mode="markers",
                name="alerts",
                marker={"symbol": "x", "size": 11, "color": "#d62728"},
                text=[
                    f"{' + '.join(a.detectors) or a.detector} ({a.status.value})"
                    for a in live.alerts
                ],
                hovertemplate="%{text}<extra>alert</extra>",
            )
        )


def _overlays(fig: go.Figure, overlays: Overlays) -> None:
    """Silenced spans shaded, annotations as marks or spans with their text, limits as lines."""
    for w in overlays.silences:
        fig.add_vrect(
            x0=w.start, x1=w.end, fillcolor=SILENCE_FILL, line_width=0, layer="below",
            annotation_text=f"silenced: {w.silence.reason}", annotation_position="bottom left",
        )  # fmt: skip
    for note in overlays.annotations:
        if note.ends_at is None:
            fig.add_vline(x=note.starts_at, line={"color": NOTE_COLOR, "width": 1, "dash": "dot"})
            fig.add_annotation(
                x=note.starts_at, y=1, yref="paper", text=note.text, showarrow=False,
                font={"color": NOTE_COLOR}, xanchor="left",
            )  # fmt: skip
        else:
            fig.add_vrect(
                x0=note.starts_at, x1=note.ends_at, fillcolor="rgba(108,52,131,0.08)",
                line_width=0, layer="below", annotation_text=note.text,
                annotation_position="top right",
            )  # fmt: skip
    if overlays.limits is not None:
        for level, value in overlays.limits.levels().items():
            color, dash = LIMIT_STYLE.get(level, ("#888888", "dot"))
            fig.add_hline(
                y=value, line={"color": color, "width": 1, "dash": dash},
                annotation_text=f"{level.replace('_', '-')} {value:g}",
                annotation_position="right",
            )  # fmt: skip


def live_figure(
    live: LiveFrame, level: int | None = 80, overlays: Overlays | None = None
) -> go.Figure:
    """History, forecasts with bands, injected events (spans), alerts (markers) and, given
    them, silences, annotations and limits."""
    fig = go.Figure()
    _history(fig, live)
    _forecasts(fig, live, level)
    _events_and_alerts(fig, live)
    if overlays is not None:
        _overlays(fig, overlays)
    sensor = live.view.sensor
    unit = f" ({sensor.unit})" if sensor.unit else ""
    fig.update_layout(
        height=480,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=f"{sensor.name}{unit}",
        legend={"orientation": "h", "y": 1.12},
        uirevision=sensor.name,  # keep zoom and legend clicks across live refreshes
        hovermode="x unified",
    )
    return fig


def asset_figures(view: AssetView) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The asset view's three charts: normalized traces; the score with its threshold and the
    alerts' spans; each sensor's share of the score, stacked."""
    traces = go.Figure()
    for name in view.normalized.columns:
        traces.add_trace(
            go.Scatter(x=view.normalized.index, y=view.normalized[name], name=name, mode="lines")
        )
    traces.update_layout(
        title="Sensors (each normalized over the window)", height=320, yaxis_title="σ"
    )
    score = go.Figure()
    score.add_trace(go.Scatter(x=view.score.index, y=view.score, name="score", mode="lines"))
    if view.threshold is not None:
        score.add_hline(y=view.threshold, line_dash="dash", annotation_text="threshold")
    for alert in view.alerts:
        end = alert.ends_at if alert.ends_at is not None else view.end
        score.add_vrect(x0=alert.ts, x1=end, fillcolor="red", opacity=0.15, line_width=0)
    score.update_layout(title=f"Asset score ({view.detector})", height=260)
    shares = go.Figure()
    for name in view.shares.columns:
        shares.add_trace(
            go.Scatter(
                x=view.shares.index,
                y=view.shares[name],
                name=name,
                stackgroup="shares",
                mode="lines",
            )
        )
    shares.update_layout(
        title="Contributions (each sensor's share of the score)", height=260, yaxis_range=[0, 1]
    )
    return traces, score, shares
