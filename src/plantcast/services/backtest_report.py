"""A self-contained HTML report of backtests: one panel per model, bands and a metrics table."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from plantcast.core.timeutil import format_duration
from plantcast.forecast.backtest import BacktestResult

MAX_ORIGINS_DRAWN = 12  # more origins than this turn the panel into a smear
_METRICS = [
    ("mae", "MAE", "{:.3f}"),
    ("rmse", "RMSE", "{:.3f}"),
    ("mase", "MASE", "{:.3f}"),
    ("smape", "sMAPE %", "{:.2f}"),
    ("coverage_80", "cover 80 %", "{:.1%}"),
    ("coverage_95", "cover 95 %", "{:.1%}"),
]
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.8rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.best td { font-weight: 600; background: #eef6ee; }
section { border-top: 2px solid #eee; padding-top: 0.5rem; margin-top: 1.5rem; }
.note { color: #666; font-size: 0.9rem; }
"""


def _fmt(value, pattern: str) -> str:
    return "–" if value is None or not np.isfinite(value) else pattern.format(value)


def _metrics_table(results: dict[str, BacktestResult]) -> str:
    best = min(results, key=lambda k: results[k].metrics.get("mase", np.inf))
    head = "".join(f"<th>{label}</th>" for _, label, _ in _METRICS)
    rows = []
    for name, res in sorted(results.items(), key=lambda kv: kv[1].metrics.get("mase", np.inf)):
        cells = "".join(f"<td>{_fmt(res.metrics.get(k), p)}</td>" for k, _, p in _METRICS)
        cls = ' class="best"' if name == best else ""
        n = len(res.origins)
        rows.append(f"<tr{cls}><td>{html.escape(name)}</td>{cells}<td>{n}</td></tr>")
    return f"<table><tr><th>model</th>{head}<th>origins</th></tr>{''.join(rows)}</table>"


def _drawn_origins(result: BacktestResult) -> list:
    origins = result.origins
    if len(origins) <= MAX_ORIGINS_DRAWN:
        return origins
    pick = np.linspace(0, len(origins) - 1, MAX_ORIGINS_DRAWN).round().astype(int)
    return [origins[i] for i in sorted(set(pick))]


def _band(fig: go.Figure, part: pd.DataFrame, level: int, show: bool) -> None:
    lower, upper = part.get(f"lower_{level}"), part.get(f"upper_{level}")
    if lower is None or lower.isna().all():
        return
    alpha = 0.12 if level == 95 else 0.22
    x = list(part["ts"]) + list(part["ts"][::-1])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=list(upper) + list(lower[::-1]),
            fill="toself",
            fillcolor=f"rgba(31,119,180,{alpha})",
            line={"width": 0},
            hoverinfo="skip",
            name=f"{level} % band",
            legendgroup=f"band{level}",
            showlegend=show,
        )
    )


def _figure(name: str, result: BacktestResult, series: pd.Series) -> go.Figure:
    fc = result.forecasts
    start = fc["origin"].min() - result.horizon * result.interval
    actual = series[(series.index >= start) & (series.index <= fc["ts"].max())]
    fig = go.Figure()
    for i, origin in enumerate(_drawn_origins(result)):
        part = fc[fc["origin"] == origin]
        for level in (95, 80):
            _band(fig, part, level, show=i == 0)
        fig.add_trace(
            go.Scatter(
                x=part["ts"],
                y=part["mean"],
                mode="lines",
                line={"color": "#1f77b4", "width": 1.5},
                name="forecast",
                legendgroup="forecast",
                showlegend=i == 0,
                hovertemplate=f"origin {origin:%m-%d %H:%M}<br>%{{x}}<br>%{{y:.2f}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=actual.index,
            y=actual.to_numpy(),
            mode="lines",
            line={"color": "#333", "width": 1},
            name="actual",
        )
    )
    fig.update_layout(
        title=f"{name}: forecasts from {len(_drawn_origins(result))} of {len(result.origins)} "
        f"origins, horizon {result.horizon} × {format_duration(result.interval)}",
        height=420,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.15},
        yaxis_title="value",
    )
    return fig


def write_backtest_report(
    results: dict[str, BacktestResult],
    series: pd.Series,
    path: str | Path,
    title: str = "Backtest report",
) -> Path:
    """Write one self-contained HTML file (plotly.js inlined, works offline) and return its path.

    A summary table ranks the models by MASE; each model then gets a panel with actuals, the
    forecast of each origin, its 80/95 % conformal bands (calibrated on other origins, so the
    coverage shown is honest) and its metrics.
    """
    if not results:
        raise ValueError("no backtest results to report")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections = []
    for i, (name, res) in enumerate(results.items()):
        fig_html = _figure(name, res, series).to_html(
            full_html=False, include_plotlyjs="inline" if i == 0 else False
        )
        sections.append(
            f"<section><h2>{html.escape(name)}</h2>{fig_html}"
            f"{_metrics_table({name: res})}</section>"
        )
    any_result = next(iter(results.values()))
    span = f"{series.index.min():%Y-%m-%d %H:%M} – {series.index.max():%Y-%m-%d %H:%M} UTC"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">{len(series)} readings, {span}; horizon {any_result.horizon} steps of
{format_duration(any_result.interval)}; rolling origins, each fitted only on data before it.</p>
{_metrics_table(results)}
<p class="note">MASE below 1 beats the in-sample seasonal naive forecast. Coverage is measured
with bands calibrated on the other half of the origins (never on the origin's own residuals).
The best model by MASE is highlighted.</p>
{"".join(sections)}
</body></html>"""
    path.write_text(doc, encoding="utf-8")
    return path
