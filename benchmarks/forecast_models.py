"""Model accuracy on the vendored real series: every model and ``auto`` beside MSTL/AutoETS.

Each model is backtested on the same rolling origins (horizon one day, 14 windows one day
apart) with the series' true seasons given by hand; ``mstl`` and ``ets`` are statsforecast's
MSTL and AutoETS. The goal (issue #9): ``auto`` MASE ≤ 0.95 × the better of the two.

Run: ``.venv/bin/python benchmarks/forecast_models.py`` (about 10 minutes on 2 cores), or
``--series taylor_electricity_demand --models mstl,lag_gbm,auto`` for a part of it.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from _common import print_table, progress
from plantcast.forecast import AutoForecaster, available_models, backtest, get_model

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# name -> (true seasons, interval): the seasons a person who knows the data would type
SERIES = {
    "taylor_electricity_demand": (("24h", "7d"), pd.Timedelta("30min")),
    "seattle_temperature": (("24h",), pd.Timedelta("1h")),
    "sf_temperature": (("24h",), pd.Timedelta("1h")),
    "water_flow": (("24h",), pd.Timedelta("1h")),
}
WINDOWS = 14


def load(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / f"{name}.csv")
    return pd.Series(
        frame["value"].to_numpy(dtype=float), index=pd.to_datetime(frame["ts"], utc=True)
    )


def run_series(name: str, models: list[str]) -> None:
    periods, interval = SERIES[name]
    series = load(name)
    horizon = int(pd.Timedelta("1d") / interval)
    rows, scores = [], {}
    for model in models:
        params = {"periods": periods}
        if model == "auto":
            params["horizon"] = horizon
        progress(f"{name}: {model}")
        t = time.perf_counter()
        forecaster = _RecordingAuto(**params) if model == "auto" else get_model(model, **params)
        _RecordingAuto.chosen.clear()
        try:
            result = backtest(series, forecaster, horizon, windows=WINDOWS)
        except Exception as exc:  # one model that cannot run does not sink the table
            rows.append([model, "failed", "", f"{type(exc).__name__}: {exc}"[:60]])
            continue
        seconds = time.perf_counter() - t
        scores[model] = result.metrics["mase"]
        picks = pd.Series(_RecordingAuto.chosen, dtype=object).value_counts()
        chosen = ", ".join(f"{k} ×{v}" for k, v in picks.items())
        rows.append([model, f"{scores[model]:.3f}", f"{seconds:.1f}", chosen])
    best_ref = min(scores.get("mstl", float("inf")), scores.get("ets", float("inf")))
    rows.sort(key=lambda r: float(r[1]) if r[1] != "failed" else float("inf"))
    title = (
        f"{name}: {len(series):,} readings, seasons {','.join(periods)}, horizon {horizon} "
        f"steps, {WINDOWS} origins; MASE (lower is better)"
    )
    print_table(title, ["model", "MASE", "seconds", "auto chose (per origin)"], rows, left=1)
    if "auto" in scores and best_ref < float("inf"):
        ratio = scores["auto"] / best_ref
        verdict = "met" if ratio <= 0.95 else "short"
        print(f"auto / best of MSTL, AutoETS = {ratio:.3f} (goal ≤ 0.95: {verdict})")


class _RecordingAuto(AutoForecaster):
    """``auto`` with default settings that notes what it chose at each backtest origin."""

    chosen: list[str] = []  # noqa: RUF012 (one run at a time)

    def fit(self, series: pd.Series) -> _RecordingAuto:
        super().fit(series)
        _RecordingAuto.chosen.append(self.chosen_)
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default=",".join(SERIES), help="comma-separated names")
    parser.add_argument("--models", default="all", help="comma-separated, or 'all' (+ auto)")
    args = parser.parse_args(argv)
    models = available_models() if args.models == "all" else args.models.split(",")
    warnings.filterwarnings("ignore")
    t = time.perf_counter()
    for name in args.series.split(","):
        run_series(name, models)
    print(f"\ntotal {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
