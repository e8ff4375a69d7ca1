"""Forecast benchmark: accuracy vs the reference demo, refresh cost vs history length, JIT cost.

Run: ``.venv/bin/python benchmarks/forecast.py`` (about 2–3 minutes) or with ``--quick``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.svm import SVR

from plantcast.forecast import ForecastCache, available_models, backtest, get_model, mae
from plantcast.signals import SignalModel, generate_readings

NOISE_FLOOR_MAE = 1.0  # uniform ±2 noise: E|U| = 1
HORIZON = 48  # one day at 30 min
DASHBOARD_MODELS = ("fourier_linear", "svr", "random_forest", "seasonal_naive")


def demo_series(points: int = 14 * 48) -> pd.Series:
    return generate_readings(SignalModel(), "2024-01-01", periods=points, interval="30min")


def table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a plain aligned table."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print(line)
    for j, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if j == 0:
            print(line)
    print(line)


# --- the reference demo's method: row ids as features, refit on everything --------------------
def reference_features(rows: np.ndarray, period_rows: int, harmonics: int = 3) -> np.ndarray:
    cols = [rows.astype(float)]  # the raw, unscaled row id, as the demo had it
    for k in range(1, harmonics + 1):
        cols += [
            np.sin(2 * np.pi * k * rows / period_rows),
            np.cos(2 * np.pi * k * rows / period_rows),
        ]
    return np.column_stack(cols)


REFERENCE_REGRESSORS = {
    "svr": lambda: SVR(kernel="rbf"),
    "random_forest": lambda: RandomForestRegressor(random_state=0),
    "linear": LinearRegression,
}


def reference_forecast(values: np.ndarray, regressor: str, period_rows: int, horizon: int):
    rows = np.arange(len(values))
    model = REFERENCE_REGRESSORS[regressor]().fit(reference_features(rows, period_rows), values)
    future = np.arange(len(values), len(values) + horizon)
    return model.predict(reference_features(future, period_rows))


def reference_backtest(series: pd.Series, regressor: str, period_rows: int, origins: list) -> float:
    errors = []
    for origin in origins:
        train = series[series.index <= origin].to_numpy()
        actual = series[series.index > origin].iloc[:HORIZON].to_numpy()
        errors.append(mae(actual, reference_forecast(train, regressor, period_rows, HORIZON)))
    return float(np.mean(errors))


def accuracy(quick: bool) -> None:
    s = demo_series()
    windows, step = (10, 24) if quick else (40, 6)
    rows, origins = [], None
    for name in available_models():
        t = time.perf_counter()
        res = backtest(s, get_model(name), HORIZON, step=step, windows=windows)
        origins = res.origins
        m = res.metrics
        rows.append(
            [
                f"plantcast {name}",
                f"{m['mae'] / NOISE_FLOOR_MAE:.3f}",
                f"{m['mase']:.3f}",
                f"{m['coverage_80']:.1%}",
                f"{m['coverage_95']:.1%}",
                f"{time.perf_counter() - t:.2f}",
            ]
        )
    for regressor in REFERENCE_REGRESSORS:
        for period_rows in (24, 48):
            t = time.perf_counter()
            err = reference_backtest(s, regressor, period_rows, origins)
            rows.append(
                [
                    f"reference {regressor} P={period_rows} rows",
                    f"{err:.3f}",
                    "",
                    "",
                    "",
                    f"{time.perf_counter() - t:.2f}",
                ]
            )
    table(
        f"Accuracy on the demo signal (30 min, 14 days, ±2 uniform noise), horizon {HORIZON}, "
        f"{len(origins)} origins {step} steps apart; MAE / noise floor (1.0 is perfect)",
        ["method", "MAE ratio", "MASE", "cover 80", "cover 95", "seconds"],
        rows,
    )


# --- cost of one dashboard refresh ---------------------------------------------------------
def _reference_refresh(values: np.ndarray) -> float:
    t = time.perf_counter()
    for regressor in REFERENCE_REGRESSORS:
        reference_forecast(values, regressor, 48, HORIZON)
    _ = np.tile(values[-48:], 1)  # the seasonal-naive baseline: last day repeated
    return time.perf_counter() - t


def reference_cost(values: np.ndarray, cap: int) -> tuple[float, str]:
    """Measured when history ≤ cap, else extrapolated from two capped runs (SVR is ~n²)."""
    if len(values) <= cap:
        return _reference_refresh(values), "measured"
    small, big = cap // 2, cap
    t_small, t_big = _reference_refresh(values[-small:]), _reference_refresh(values[-big:])
    exponent = max(1.0, np.log(t_big / t_small) / np.log(big / small))
    return t_big * (
        len(values) / big
    ) ** exponent, f"extrapolated from {big} rows (n^{exponent:.1f})"


def plantcast_refresh(cache: ForecastCache, series: pd.Series) -> float:
    t = time.perf_counter()
    for name in DASHBOARD_MODELS:
        cache.get_or_fit("reservoir_pressure", name, {}, series).predict(HORIZON)
    return time.perf_counter() - t


def refresh_cost(quick: bool) -> None:
    sizes = (10_000, 100_000, 1_000_000)
    cap = 4_000 if quick else 10_000
    rows = []
    for n in sizes:
        s = demo_series(n)
        ref, how = reference_cost(s.to_numpy(), cap)
        cache = ForecastCache()
        colds = []
        for _ in range(1 if quick else 3):
            cache.clear()
            colds.append(plantcast_refresh(cache, s))
        warm = min(plantcast_refresh(cache, s) for _ in range(5))
        assert cache.misses == len(DASHBOARD_MODELS) and cache.hits == 5 * len(DASHBOARD_MODELS)
        rows.append(
            [
                f"{n:,}",
                f"{ref * 1000:,.0f}",
                how,
                f"{np.median(colds) * 1000:.0f}",
                f"{warm * 1000:.1f}",
            ]
        )
    table(
        "Forecasting part of one dashboard refresh (fourier_linear, svr, random_forest, "
        f"seasonal_naive; fit + predict {HORIZON} steps), milliseconds",
        ["history", "reference ms", "reference measured how", "cold ms", "warm ms"],
        rows,
    )
    print(
        "cold = cache miss, bounded window of 2016 readings; warm = cache hit (same last reading)"
    )


# --- statsforecast first-call cost ---------------------------------------------------------
_FIRST_CALL = """
import time
t0 = time.perf_counter()
from plantcast.forecast import get_model
from plantcast.signals import SignalModel, generate_readings
s = generate_readings(SignalModel(), "2024-01-01", periods=14 * 48, interval="30min")
t1 = time.perf_counter()
import statsforecast.models  # noqa: F401
t2 = time.perf_counter()
out = []
for name in ("mstl", "ets"):
    for _ in range(2):
        t = time.perf_counter()
        get_model(name).fit(s).predict(48)
        out.append(time.perf_counter() - t)
print(t2 - t1, *out)
"""


def first_call_cost() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True, check=True
    )
    imp, m1, m2, e1, e2 = (float(x) for x in done.stdout.split())
    table(
        "statsforecast first-call cost (fresh process, 14 days at 30 min)",
        ["step", "seconds"],
        [
            ["import statsforecast.models", f"{imp:.2f}"],
            ["mstl fit+predict, 1st call", f"{m1:.2f}"],
            ["mstl fit+predict, 2nd call", f"{m2:.2f}"],
            ["ets fit+predict, 1st call", f"{e1:.2f}"],
            ["ets fit+predict, 2nd call", f"{e2:.2f}"],
        ],
    )
    import statsforecast

    print(
        f"statsforecast {statsforecast.__version__}: first-call overhead (JIT/warm-up) = "
        f"{m1 - m2:+.2f} s mstl, {e1 - e2:+.2f} s ets, plus the import"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer origins, smaller caps")
    args = parser.parse_args()
    t = time.perf_counter()
    accuracy(args.quick)
    refresh_cost(args.quick)
    first_call_cost()
    print(f"\ntotal {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
