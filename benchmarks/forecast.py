"""Forecast benchmark: accuracy vs the reference demo, refresh cost vs history length, JIT cost.

Run: ``.venv/bin/python benchmarks/forecast.py`` (about 2–3 minutes) or with ``--quick``.
``--real``: instead, every registered model and ``auto`` with default settings (detected
seasons) on the real series of tests/data beside statsforecast's MSTL, AutoETS and AutoTheta
given the true seasons, on the same origins, a per-series table of ``auto`` against each of
the three, and the wall time of the all-models backtest serial vs parallel (about 15 minutes
on 2 cores; ``--series`` for a part of it, ``--no-timing`` to skip the wall time).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.svm import SVR

from _common import print_table, progress
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


# --- real series: plantcast with defaults beside statsforecast given the true seasons ----------
DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# name -> (true seasons, interval): what a person who knows the data would type by hand
REAL = {
    "taylor_electricity_demand": (("24h", "7d"), "30min"),
    "seattle_temperature": (("24h",), "1h"),
    "sf_temperature": (("24h",), "1h"),
    "water_flow": (("24h",), "1h"),
}
REAL_WINDOWS = 14
SF_MODELS = ("sf MSTL", "sf AutoETS", "sf AutoTheta")  # statsforecast, given the true seasons
TRAIN_POINTS = 2016  # plantcast's default training bound; statsforecast gets the same input


def load_real(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / f"{name}.csv")
    return pd.Series(
        frame["value"].to_numpy(dtype=float), index=pd.to_datetime(frame["ts"], utc=True)
    )


def default_models(series: pd.Series, horizon: int) -> tuple[tuple[str, ...], list]:
    """Every registered model as ``plantcast backtest --models all,auto`` builds it for a sensor
    with no flags: seasons detected from the data (24h when none), the CLI's default spec."""
    from plantcast.forecast.seasons import detect_seasons, format_periods
    from plantcast.services.context import DEFAULT_PERIODS
    from plantcast.services.forecasting import ForecastSpec

    periods = format_periods(detect_seasons(series)) or DEFAULT_PERIODS
    spec = ForecastSpec(periods=periods, horizon=horizon, windows=REAL_WINDOWS)
    return periods, [get_model(name, **spec.model_params(name)) for name in available_models()]


def statsforecast_cv(series, seasons, interval, horizon) -> pd.DataFrame:
    """statsforecast's own cross-validation of MSTL, AutoETS and AutoTheta (true seasons,
    defaults else) on the regularised series: one refit per window, same cutoffs as
    plantcast's origins."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, AutoTheta

    steps = [round(pd.Timedelta(p) / interval) for p in seasons]
    regular = series.resample(interval).mean().interpolate(limit_area="inside")
    frame = pd.DataFrame(
        {"unique_id": "s", "ds": regular.index.tz_localize(None), "y": regular.to_numpy()}
    )
    sf = StatsForecast(
        models=[
            MSTL(season_length=steps),
            AutoETS(season_length=steps[0]),
            AutoTheta(season_length=steps[0]),
        ],
        freq=interval,
    )
    cv = sf.cross_validation(
        df=frame,
        h=horizon,
        n_windows=REAL_WINDOWS,
        step_size=horizon,
        input_size=TRAIN_POINTS,
        refit=True,
    )
    cv["ds"] = pd.to_datetime(cv["ds"]).dt.tz_localize("UTC")
    cv["cutoff"] = pd.to_datetime(cv["cutoff"]).dt.tz_localize("UTC")
    return cv.rename(columns={m[3:]: m for m in SF_MODELS})


def common_scale(series: pd.Series, origins, season: int) -> dict:
    """One MASE denominator per origin for every method: in-sample seasonal-naive MAE (true
    first season) over the ``TRAIN_POINTS`` readings up to the origin."""
    from plantcast.forecast.metrics import naive_scale

    return {
        o: naive_scale(series[series.index <= o].to_numpy()[-TRAIN_POINTS:], season)
        for o in origins
    }


def _mase(frame: pd.DataFrame, column: str, scale: dict) -> float:
    ok = frame[["y", column]].notna().all(axis=1)
    f = frame[ok]
    return float(np.mean(np.abs(f["y"] - f[column]) / f["origin"].map(scale)))


def real_series(name: str) -> None:
    from plantcast.forecast.backtest import backtest_many
    from plantcast.forecast.preprocess import format_duration

    seasons, interval = REAL[name]
    interval = pd.Timedelta(interval)
    series = load_real(name)
    horizon = int(pd.Timedelta("1d") / interval)
    progress(f"{name}: detecting seasons, backtesting {len(available_models())} models")
    periods, models = default_models(series, horizon)
    t = time.perf_counter()
    results, failed = backtest_many(
        series, models, horizon, horizon, REAL_WINDOWS, n_jobs=-1, on_progress=None
    )
    ours_s = time.perf_counter() - t
    progress(f"{name}: statsforecast MSTL, AutoETS, AutoTheta, true seasons {','.join(seasons)}")
    t = time.perf_counter()
    cv = statsforecast_cv(series, seasons, interval, horizon)
    sf_s = time.perf_counter() - t
    any_result = next(iter(results.values()))
    origins = any_result.origins
    assert set(cv["cutoff"]) == set(origins), "statsforecast cut-offs differ from our origins"
    frame = any_result.forecasts[["origin", "ts", "y"]]
    frame = frame.merge(
        cv[["cutoff", "ds", *SF_MODELS]],
        left_on=["origin", "ts"],
        right_on=["cutoff", "ds"],
        how="left",
    )
    for model_name, result in results.items():
        frame[model_name] = result.forecasts["mean"].to_numpy()
    scale = common_scale(series, origins, round(pd.Timedelta(seasons[0]) / interval))
    scores = {c: _mase(frame, c, scale) for c in [*results, *SF_MODELS]}
    best_ref = min(scores[m] for m in SF_MODELS)
    rows = [
        [
            c,
            "statsforecast, true seasons" if c.startswith("sf ") else "plantcast, defaults",
            f"{v:.3f}",
            f"{v / best_ref:.2f}",
        ]
        for c, v in sorted(scores.items(), key=lambda kv: kv[1])
    ]
    rows += [[m, "plantcast, defaults", "failed", why[:50]] for m, why in failed.items()]
    print_table(
        f"{name}: {len(series):,} readings at {format_duration(interval)}; detected seasons "
        f"{','.join(periods) or 'none'} (true {','.join(seasons)}); horizon {horizon} steps, "
        f"{len(origins)} origins one day apart; MASE on one scale per origin "
        f"(plantcast {ours_s:.0f} s on every core, statsforecast {sf_s:.0f} s)",
        ["method", "how", "MASE", "/ best sf"],
        rows,
        left=2,
    )
    return {"series": name, "periods": periods, **scores}


def auto_against_statsforecast(summaries: list[dict]) -> None:
    """Per series: auto's MASE beside each statsforecast model's, on the same origins."""
    rows = []
    for r in summaries:
        if "auto" not in r:
            rows.append([r["series"], "failed", *("" for _ in SF_MODELS), "", ""])
            continue
        best = min(SF_MODELS, key=r.get)
        ratio = r["auto"] / r[best]
        rows.append(
            [
                r["series"],
                f"{r['auto']:.3f}",
                *(f"{r[m]:.3f} ({r['auto'] / r[m]:.2f}x)" for m in SF_MODELS),
                f"{ratio:.3f} ({best[3:]})",
                "met" if ratio <= 1.0 else "short",
            ]
        )
    print_table(
        "auto (defaults, detected seasons) against statsforecast given the true seasons, same "
        "origins and MASE scale; (auto / that model); goal: auto <= the best of the three",
        ["series", "auto", *(f"{m} (auto/it)" for m in SF_MODELS), "auto / best", "goal"],
        rows,
        left=1,
    )


_TIMED = """
import resource, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import pandas as pd
from plantcast.forecast import available_models, get_model
from plantcast.forecast.backtest import backtest_many
from plantcast.services.forecasting import ForecastSpec
frame = pd.read_csv(sys.argv[1])
s = pd.Series(frame["value"].to_numpy(float), index=pd.to_datetime(frame["ts"], utc=True))
spec = ForecastSpec(periods=("24h", "7d"), horizon=48, windows=14)
names = [m for m in available_models() if m != "auto"]
models = [get_model(n, **spec.model_params(n)) for n in names]
jobs = int(sys.argv[2])
per_model = {}
if jobs == 1:  # one model at a time, to say where the time goes
    results = {}
    for m in models:
        c = time.process_time()
        results.update(backtest_many(s, [m], 48, None, 14, n_jobs=1)[0])
        per_model[m.name] = time.process_time() - c
else:
    results, failed = backtest_many(s, models, 48, None, 14, n_jobs=jobs)
wall = time.perf_counter() - t0
from joblib.externals.loky import get_reusable_executor
get_reusable_executor().shutdown(wait=True)  # reap the workers: their CPU time is counted
cpu = sum(
    getattr(resource.getrusage(who), f)
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    for f in ("ru_utime", "ru_stime")
)
print(len(names), wall, cpu, " ".join(f"{k}={v.metrics['mase']:.6f}" for k, v in results.items()))
print(" ".join(f"{k}={v:.1f}" for k, v in per_model.items()))
"""


def backtest_wall_time() -> None:
    """`plantcast backtest --models all --horizon 1d --windows 14` on taylor, in fresh processes
    (imports and worker start-up included, as the CLI pays them)."""
    import os

    csv = DATA / "taylor_electricity_demand.csv"
    rows, mases, cpu_by_model = [], {}, ""
    for jobs in (1, -1):
        progress(f"all-models backtest, n_jobs={jobs}")
        load = os.getloadavg()[0]
        done = subprocess.run(
            [sys.executable, "-c", _TIMED, str(csv), str(jobs)],
            capture_output=True,
            text=True,
            check=True,
        )
        first, second = done.stdout.split("\n")[-3:-1]  # the last two lines
        n, wall, cpu, *scores = first.split()
        mases[jobs] = scores
        if second.strip():
            cpu_by_model = second
        label = (
            "serial (--jobs 1)" if jobs == 1 else f"parallel (--jobs -1, {os.cpu_count()} cores)"
        )
        rows.append([label, n, f"{float(wall):.1f}", f"{float(cpu):.1f}", f"{load:.1f}"])
    print_table(
        "Backtest of every model but auto x 14 windows, horizon 1 day, taylor (4,032 readings, "
        "periods 24h,7d): wall seconds in a fresh process (goal <= 10 s)",
        ["run", "models", "wall s", "CPU s (all processes)", "load avg before"],
        rows,
        left=1,
    )
    same = mases[1] == mases[-1]
    print(f"serial CPU seconds by model: {cpu_by_model}")
    print(f"parallel MASE == serial MASE for every model: {same}")
    print("  " + " ".join(mases[1]))


def real(names: list[str], timing: bool = True) -> None:
    warnings.filterwarnings("ignore")
    auto_against_statsforecast([real_series(name) for name in names])
    if timing:
        backtest_wall_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer origins, smaller caps")
    parser.add_argument("--real", action="store_true", help="real series (see the docstring)")
    parser.add_argument("--series", default=",".join(REAL), help="with --real: which ones")
    parser.add_argument("--no-timing", action="store_true", help="with --real: no wall time")
    parser.add_argument("--timing", action="store_true", help="only the all-models wall time")
    args = parser.parse_args()
    t = time.perf_counter()
    if args.timing:
        backtest_wall_time()
        return
    if args.real:
        real([name for name in args.series.split(",") if name], timing=not args.no_timing)
        print(f"\ntotal {time.perf_counter() - t:.0f} s")
        return
    accuracy(args.quick)
    refresh_cost(args.quick)
    first_call_cost()
    print(f"\ntotal {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
