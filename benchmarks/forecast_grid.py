"""Benchmark a fast sensor's stored forecast on a coarser step: cost and error, side by side.

Run: ``.venv/bin/python benchmarks/forecast_grid.py [--tags 6] [--history 2h] [--horizon 10min]
[--points 60] [--model auto]``.

The scheduled refresh (``services.forecast_store``) forecasts a sensor whose horizon holds more
than ``--points`` of its readings on their means over a coarser step (``forecast_grid``): a
1 s tag's 10 min ahead as 60 steps of 10 s, not 600 of 1 s. Here, for ``--tags`` simulated 1 s
tags (an hourly cycle at the tag's own phase, a slow wander and noise, as the soak's PLC
publishes them plus what a real signal has), each with ``--history`` of readings and the next
``--horizon`` held out, the refit the refresh makes (``forecast_refit.refit_data``: ``auto``
choosing its model by backtests, then the 80/95 % bands from a backtest of the choice) is timed
both ways, and again with the choice kept (what an hourly refresh costs between choices).
Error: each forecast against the held-out readings averaged onto the coarse step (the 1 s
forecast averaged the same way), MAE, and how often the held-out means fall within the 80 %
band. Printed per tag and the medians; progress to stderr.

``--origins N`` (default 6): the bands' calibration, both ways. Each tag's choice is kept and
refitted at N more forecast origins, a horizon apart after the first (its history growing, as an
hourly refresh's does), and every held-out mean is checked against its 80 % and 95 % bands:
printed is how often it fell inside, over all tags and origins (a calibrated band holds 80 %
and 95 % of them).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from _common import print_table, progress
from plantcast.forecast.preprocess import coarsen
from plantcast.services.forecast_refit import refit_data
from plantcast.services.forecast_store import forecast_grid, horizon_in_steps
from plantcast.services.forecasting import ForecastSpec, SensorData

SECOND = pd.Timedelta("1s")


def tag_series(tag: int, seconds: int) -> pd.Series:
    """A 1 s tag: an hourly cycle at its own phase, a slow random wander, and noise."""
    rng = np.random.default_rng(tag)
    t = np.arange(seconds)
    wander = np.cumsum(rng.normal(0, 0.02, seconds))
    values = 50 + 10 * np.sin(2 * np.pi * t / 3600 + tag) + wander + rng.normal(0, 0.5, seconds)
    index = pd.date_range("2026-03-01", periods=seconds, freq="1s", tz="UTC")
    return pd.Series(values, index=index)


def one_way(train: pd.Series, held: pd.Series, spec: ForecastSpec, step: pd.Timedelta) -> dict:
    """Refit (choosing, then keeping the choice) on ``train`` as the refresh reads it, and
    score the forecast against ``held`` averaged onto ``step``."""
    data = SensorData("tag", coarsen(train, spec.step) if spec.step is not None else train)
    t0 = time.perf_counter()
    chosen = refit_data(data, spec)
    auto_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    refit_data(data, spec, chosen.choice)
    kept_s = time.perf_counter() - t0
    both = against(chosen.frame, train, held, spec, step)
    inside = None
    if "lower_80" in both:
        within = (both["truth"] >= both["lower_80"]) & (both["truth"] <= both["upper_80"])
        inside = float(within.mean())
    return {
        "auto_s": auto_s,
        "kept_s": kept_s,
        "chosen": chosen.chosen,
        "choice": chosen.choice,
        "mae": float((both["mean"] - both["truth"]).abs().mean()),
        "inside_80": inside,
        "points": len(chosen.frame),
    }


def against(
    frame: pd.DataFrame, train: pd.Series, held: pd.Series, spec: ForecastSpec, step: pd.Timedelta
) -> pd.DataFrame:
    """The forecast's points beside the held-out readings' means over ``step`` (``truth``)."""
    if spec.step is None:  # the 1 s forecast, averaged onto the coarse step as the truth is
        frame = frame.apply(lambda column: coarsen(column, step))
    truth = coarsen(pd.concat([train.iloc[-1:], held]), step).iloc[1:]
    return frame.join(truth.rename("truth"), how="inner")


def band_hits(
    series: pd.Series, origins: list[int], steps: int, spec: ForecastSpec, choice, step
) -> dict[str, list[bool]]:
    """At each origin (a reading's position), the kept ``choice`` refitted on the readings
    before it: whether each held-out mean fell within its 80 % and 95 % bands."""
    hits: dict[str, list[bool]] = {"80": [], "95": []}
    for at in origins:
        train, held = series.iloc[:at], series.iloc[at : at + steps]
        data = SensorData("tag", coarsen(train, spec.step) if spec.step is not None else train)
        both = against(refit_data(data, spec, choice).frame, train, held, spec, step)
        for level in hits:
            if f"lower_{level}" in both:
                low, high = both[f"lower_{level}"], both[f"upper_{level}"]
                hits[level] += list((both["truth"] >= low) & (both["truth"] <= high))
    return hits


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tags", type=int, default=6)
    p.add_argument("--history", default="2h")
    p.add_argument("--horizon", default="10min")
    p.add_argument("--points", type=int, default=60)
    p.add_argument("--model", default="auto")
    p.add_argument("--origins", type=int, default=6, help="more origins for the bands' check")
    args = p.parse_args(argv)
    history = int(pd.Timedelta(args.history) / SECOND)
    steps = horizon_in_steps(pd.Timedelta(args.horizon), SECOND)
    coarse_steps, step = forecast_grid(SECOND, steps, args.points)
    if step is None:
        raise SystemExit(f"--horizon {args.horizon} is {steps} readings: no coarser step needed")
    rows, fine_all, coarse_all = [], [], []
    coarse_name = f"{int(step / SECOND)} s"
    hits: dict[str, dict[str, list[bool]]] = {
        f"1 s, averaged to {coarse_name}": {"80": [], "95": []},
        coarse_name: {"80": [], "95": []},
    }
    later = [history + k * steps for k in range(1, args.origins + 1)]
    for tag in range(args.tags):
        series = tag_series(tag, history + steps * (args.origins + 1))
        train, held = series.iloc[:history], series.iloc[history : history + steps]
        fine_spec = ForecastSpec(model=args.model, horizon=steps, periods=())
        coarse_spec = ForecastSpec(model=args.model, horizon=coarse_steps, periods=(), step=step)
        fine = one_way(train, held, fine_spec, step)
        coarse = one_way(train, held, coarse_spec, step)
        fine_all.append(fine)
        coarse_all.append(coarse)
        rows.append(_row(f"tag{tag}", fine, coarse))
        for way, spec, run in zip(hits, (fine_spec, coarse_spec), (fine, coarse), strict=True):
            for level, got in band_hits(series, later, steps, spec, run["choice"], step).items():
                hits[way][level] += got
        progress(f"tag {tag + 1} of {args.tags}")
    rows.append(_row("median", _median(fine_all), _median(coarse_all)))
    print_table(
        f"{args.tags} tags at 1 s, {args.history} of history, {args.horizon} ahead: "
        f"{steps} steps of 1 s vs {coarse_steps} of {int(step / SECOND)} s ({args.model})",
        [
            "tag",
            "choose 1 s",
            f"choose {int(step / SECOND)} s",
            "ratio",
            "kept 1 s",
            f"kept {int(step / SECOND)} s",
            "chosen 1 s / coarse",
            "MAE 1 s",
            "MAE coarse",
            "in 80 % 1 s / coarse",
        ],
        rows,
        left=1,
    )
    if args.origins:
        print_table(
            f"\nThe bands at {args.origins} more origins a tag, {args.horizon} apart (the choice"
            f" kept): how often a held-out {int(step / SECOND)} s mean fell inside",
            ["forecast step", "points", "inside 80 %", "inside 95 %"],
            [
                [
                    way,
                    len(got["80"]),
                    f"{np.mean(got['80']):.0%}" if got["80"] else "-",
                    f"{np.mean(got['95']):.0%}" if got["95"] else "-",
                ]
                for way, got in hits.items()
            ],
            left=1,
        )


def _median(runs: list[dict]) -> dict:
    out: dict = {"chosen": "-", "points": runs[0]["points"]}
    for k in ("auto_s", "kept_s", "mae", "inside_80"):
        values = [r[k] for r in runs if r[k] is not None]
        out[k] = statistics.median(values) if values else None
    return out


def _row(name: str, fine: dict, coarse: dict) -> list:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.0%}"

    return [
        name,
        f"{fine['auto_s']:.2f} s",
        f"{coarse['auto_s']:.2f} s",
        f"{fine['auto_s'] / coarse['auto_s']:.1f}x",
        f"{fine['kept_s']:.2f} s",
        f"{coarse['kept_s']:.2f} s",
        f"{fine['chosen']} / {coarse['chosen']}",
        f"{fine['mae']:.3f}",
        f"{coarse['mae']:.3f}",
        f"{pct(fine['inside_80'])} / {pct(coarse['inside_80'])}",
    ]


if __name__ == "__main__":
    main()
