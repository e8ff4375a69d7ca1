"""Forecasts and backtests of a sensor, through the services the CLI uses."""

from __future__ import annotations

import json
import logging
import math
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from numpy.linalg import LinAlgError

from plantcast.api import limits
from plantcast.api.auth import READ
from plantcast.api.models import BacktestOut, ForecastOut, StoredForecastOut
from plantcast.api.problems import COMMON, NOT_FOUND, ApiProblem
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of
from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import format_duration, parse_duration

router = APIRouter(tags=["forecasts"])
log = logging.getLogger(__name__)
Horizon = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=20,
        pattern=NO_NUL,
        description="How far ahead: 6h, 1d, 7d… (default: a day of the sensor's readings, at "
        "least 24 and at most 1,440 of them)",
    ),
]
Periods = Annotated[
    str | None,
    Query(
        min_length=1, max_length=100, pattern=NO_NUL, description="Seasonal periods, e.g. 24h,7d"
    ),
]


def _spec(store, name, horizon, periods, **kw):
    from plantcast.services.forecast_store import default_horizon_steps
    from plantcast.services.forecasting import ForecastSpec
    from plantcast.services.seasons import sensor_periods_now

    sensor = store.get_sensor(name)
    if horizon is None:  # as the CLI: a weekly sensor's is 24 weeks, a 1 s sensor's 24 min
        steps = default_horizon_steps(sensor.interval)
    else:
        span = parse_duration(horizon, field="horizon")
        steps = math.floor(span / sensor.interval) if sensor.interval > pd.Timedelta(0) else 0
    if steps < 1:
        raise invalid(
            f"horizon {horizon} is shorter than one reading interval "
            f"({format_duration(sensor.interval)})",
            "horizon",
        )
    if steps > limits.MAX_FORECAST_STEPS:
        raise invalid(
            f"horizon {horizon} is {steps:,} steps: more than the limit of "
            f"{limits.MAX_FORECAST_STEPS:,}",
            "horizon",
            limit=limits.MAX_FORECAST_STEPS,
        )
    chosen = tuple(p.strip() for p in periods.split(",") if p.strip()) if periods else None
    for p in chosen or ():
        if parse_duration(p, field="periods") <= pd.Timedelta(0):
            raise invalid(f"period {p!r} must be positive", "periods")
    return ForecastSpec(horizon=steps, periods=chosen or sensor_periods_now(store, sensor), **kw)


def _model_names() -> list[str]:
    from plantcast.forecast import available_models

    return available_models()


def _modelled(fn, *args, **kw):
    """Call a forecasting service; data it cannot model (values of 1e300, readings centuries
    apart) is the sensor's data at fault, not the server: answered as a 422 that says why."""
    try:
        return fn(*args, **kw)
    except PlantcastError:
        raise
    except (ArithmeticError, ValueError, LinAlgError, pd.errors.OutOfBoundsDatetime) as exc:
        log.warning("cannot model: %s: %s", type(exc).__name__, exc)
        raise ApiProblem(
            422,
            "cannot-model",
            "The sensor's data cannot be modelled",
            f"{type(exc).__name__}: {str(exc)[:300]}",
        ) from None


def _finite(v) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@router.get(
    "/sensors/{name}/forecast",
    response_model=ForecastOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_forecast(
    request: Request,
    name: SensorName,
    model: Annotated[
        str,
        Query(
            min_length=1, max_length=50, pattern=NO_NUL, description="A registered model, or auto"
        ),
    ] = "fourier_linear",
    horizon: Horizon = None,
    periods: Periods = None,
) -> ForecastOut:
    """A model's forecast with 80 % and 95 % conformal bands; ``auto`` says what it chose."""
    from plantcast.services.forecasting import forecast_sensor

    if model not in _model_names():
        raise invalid(f"unknown model {model!r}; choose from {', '.join(_model_names())}", "model")
    store = store_of(request)
    spec = _spec(store, name, horizon, periods, model=model)
    result = _modelled(forecast_sensor, store, name, spec, request.app.state.forecasting)
    frame = result.frame
    cols = [c for c in ("mean", "lower_80", "upper_80", "lower_95", "upper_95") if c in frame]
    points = [
        {"ts": ts, **{c: _finite(v) for c, v in zip(cols, row, strict=True)}}
        for ts, row in zip(
            frame.index.to_pydatetime(), frame[cols].to_numpy().tolist(), strict=True
        )
    ]
    points = [p for p in points if p["mean"] is not None]
    scores = {k: v for k, v in (result.scores or {}).items() if _finite(v) is not None} or None
    return ForecastOut(
        sensor=name,
        model=model,
        chosen=result.chosen,
        scores=scores,
        fitted_on=result.fitted_on,
        no_bands=result.no_bands,
        forecast=points,  # type: ignore[arg-type]  # pydantic validates the dicts
    )


@router.get(
    "/sensors/{name}/forecast/stored",
    response_model=StoredForecastOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_stored_forecast(
    request: Request,
    name: SensorName,
    stale_after: Annotated[
        str,
        Query(
            min_length=1,
            max_length=20,
            pattern=NO_NUL,
            description="Older than this, the forecast is said to be stale",
        ),
    ] = "2h",
) -> Response:
    """The forecast the scheduled refresh keeps ready (`plantcast forecast refresh`): one row
    read, no fit; it says how old it is and whether it is stale. 404 until one is stored."""
    from plantcast.services.forecast_store import stored_forecast

    view = stored_forecast(store_of(request), name, stale_after=stale_after)
    row, choice = view.row, view.choice
    head = {
        "sensor": row.sensor,
        "model": row.model,
        "chosen": row.chosen,
        "horizon_steps": row.horizon,
        "step_s": None if view.step is None else view.step.total_seconds(),
        "made_at": row.made_at.isoformat(),
        "trained_until": row.trained_until.isoformat(),
        "age_s": round(view.age.total_seconds(), 3),
        "stale": view.stale,
        "stale_after_s": view.stale_after.total_seconds(),
        "fitted_on": row.fitted_on,
        "chosen_at": None if row.chosen_at is None else row.chosen_at.isoformat(),
        "scores": (choice.scores or None) if choice else None,
        "backtest": view.scores,
    }
    # the points are stored as the JSON this route serves: spliced in, not parsed and re-encoded
    body = json.dumps(head)[:-1] + ',"forecast":' + row.points + "}"
    return Response(body, media_type="application/json")


@router.get(
    "/sensors/{name}/backtest",
    response_model=BacktestOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_backtest(
    request: Request,
    name: SensorName,
    models: Annotated[
        str,
        Query(min_length=1, max_length=200, pattern=NO_NUL, description="Comma-separated models"),
    ] = "fourier_linear,seasonal_naive",
    horizon: Horizon = None,
    windows: Annotated[int, Query(ge=2, le=20)] = 5,
    periods: Periods = None,
) -> BacktestOut:
    """Rolling-origin backtest: MAE, RMSE, MASE, sMAPE and interval coverage per model."""
    from plantcast.services.forecasting import backtest_sensor, metrics_table

    names = tuple(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))
    unknown = [m for m in names if m not in _model_names()]
    if unknown or not names:
        raise invalid(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(_model_names())}",
            "models",
        )
    store = store_of(request)
    spec = _spec(store, name, horizon, periods, windows=windows)
    _, results, failed = _modelled(backtest_sensor, store, name, names, spec, n_jobs=1)
    table = _modelled(metrics_table, results)
    scores = {model: {col: _finite(v) for col, v in row.items()} for model, row in table.iterrows()}
    return BacktestOut(
        sensor=name, horizon_steps=spec.horizon, windows=windows, models=scores, failed=failed
    )
