"""The evaluation is production: the alerts it scores are those `detect` writes, over the
scored span only; `evaluate-detectors` runs from any folder and filters event sizes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.detect.evaluation import COMBINED, SUMMARY_COLUMNS
from plantcast.services.detection import DETECTORS, DetectOptions, detect_sensor
from plantcast.services.detector_evaluation import replay_alerts, score_scenario
from plantcast.signals.scenarios import generate_scenario


def test_replayed_alerts_are_the_alerts_detect_writes(store):
    """A scenario in a real store, scored by `detect` from the end of its warm-up: the same
    alerts, detector by detector, as the evaluation's replay of the same series."""
    scenario = generate_scenario(3, noise_kind="gaussian")
    series = scenario.series
    scored_from = series.index[series.index.searchsorted(series.index[0] + scenario.warmup)]
    sensor = store.ensure_sensor("scn", source=Source.SIMULATED, interval=scenario.interval)
    store.update_sensor_params(sensor.id, {"periods": ["24h"]})
    store.write_readings(sensor.id, series)
    detect_sensor(store, "scn", since=scored_from)
    last = series.index[-1]
    stored = {
        (a.ts, last if a.ends_at is None else a.ends_at)
        for a in store.list_alerts(sensor_id=sensor.id, limit=1_000)
    }
    replayed = replay_alerts(series, periods=("24h",), scored_from=scored_from)
    assert set(replayed) == {*DETECTORS, COMBINED}
    mine = {(row.start, row.end) for row in replayed[COMBINED].itertuples()}
    assert mine == stored
    assert len(mine) >= 3  # the scenario's events were found: the comparison is not vacuous


def test_false_alerts_are_counted_over_the_scored_span_only():
    scenario = generate_scenario(4)
    _, stats = score_scenario(scenario, periods=("24h",), baselines=())
    scored = (scenario.clean.index[-1] - scenario.clean.index[0] - scenario.warmup) / pd.Timedelta(
        days=1
    )
    assert stats["clean_days"].tolist() == [scored] * len(stats)


def _rows(output: str) -> list[dict]:
    return json.loads(output[output.index("[") :])


def test_evaluate_detectors_runs_from_a_folder_without_test_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate-detectors", "--scenarios", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {"combined", "residual_z", "rolling_z"} <= {r["detector"] for r in _rows(result.output)}
    missing = runner.invoke(cli, ["evaluate-detectors", "--real", "--scenarios", "1"])
    assert missing.exit_code == 2
    assert "--data-dir" in missing.output and "tests/data" in missing.output


def test_min_sigma_keeps_the_large_events_and_the_unsized_ones():
    args = ["evaluate-detectors", "--scenarios", "2", "--seed", "5", "--format", "json"]
    runner = CliRunner()
    every = _rows(runner.invoke(cli, args).output)
    large = _rows(runner.invoke(cli, [*args, "--min-sigma", "6"]).output)

    def events(rows, kind):
        return next(r["events"] for r in rows if r["detector"] == "combined" and r["kind"] == kind)

    assert events(every, "all") == 12 and events(large, "all") < 12  # 2 scenarios × 6 kinds
    assert events(large, "stuck") == events(every, "stuck") == 2


def test_evaluate_detectors_csv_has_the_table_with_lead_time_and_nab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["evaluate-detectors", "--scenarios", "1", "--seed", "2", "--format"]
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output[result.output.index("detector,") :])))
    assert list(rows[0]) == SUMMARY_COLUMNS
    as_json = _rows(runner.invoke(cli, [*args, "json"]).output)
    assert [r["detector"] for r in rows] == [r["detector"] for r in as_json]
    combined = next(r for r in rows if r["detector"] == "combined" and r["kind"] == "all")
    assert 0 < float(combined["nab"]) <= 100 and float(combined["median_lead_h"]) > 0
    assert "matrix_profile" not in {r["detector"] for r in rows}  # the slow one is opt-in


def test_baselines_are_replayed_chunk_by_chunk_at_the_same_budget():
    """The baselines run in the replay beside detect's detectors, calibrated to the options'
    alert budget (without one, the rolling z keeps its fixed threshold and alerts more);
    unknown names are refused."""
    idx = pd.date_range("2024-01-01", periods=48 * 28, freq="30min", tz="UTC")
    heavy_tails = np.random.default_rng(2).standard_t(2, len(idx))
    series = pd.Series(50 + heavy_tails, index=idx)
    scored_from = idx[48 * 14]

    def replay(budget):
        return replay_alerts(
            series,
            periods=(),
            scored_from=scored_from,
            options=DetectOptions(budget=budget),
            detectors=("stuck",),
            baselines=("rolling_z", "random"),
        )

    found, unbudgeted = replay(2.0), replay(None)
    assert set(found) == {"stuck", COMBINED, "rolling_z", "random"}
    assert len(found["random"]) > 0
    assert (found["random"]["end"] >= scored_from - pd.Timedelta("2h")).all()
    assert len(unbudgeted["rolling_z"]) > len(found["rolling_z"])
    with pytest.raises(ValueError, match="unknown baselines"):
        replay_alerts(series, periods=(), scored_from=scored_from, baselines=("rolling",))
