"""Feedback: a false alarm raises, for its sensor, the floors of the detectors that agreed on
it, so the same pattern does not alert again while larger real anomalies still do; and
`evaluate-detectors --labels` scores the detectors against the plant's labelled alerts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Alert, AlertLabel, AlertStatus, Source
from plantcast.detect import LevelShiftDetector, StuckDetector
from plantcast.services import alert_workflow as flow
from plantcast.services.detection import detect_sensor
from plantcast.services.feedback import MARGIN, Feedback, feedback_of, label_scores
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

START = pd.Timestamp("2026-01-05", tz="UTC")
STEP = pd.Timedelta("30min")
BUMP, REAL = 14.0, 30.0  # the routine pattern and a real shift, in the sensor's units


def _alert(label, detectors, value=130.0, expected=100.0) -> Alert:
    return Alert(
        id=1,
        sensor_id=1,
        ts=START,
        ends_at=START,
        detector=next(iter(detectors)),
        score=next(iter(detectors.values())),
        value=value,
        expected=expected,
        status=AlertStatus.OPEN,
        created_at=START,
        detectors=detectors,
        label=label,
    )


def test_false_alarms_set_floors_a_margin_above_their_peaks():
    said = feedback_of(
        [
            _alert(AlertLabel.FALSE_ALARM, {"residual_z": 8.0, "level_shift": 10.0}),
            _alert(AlertLabel.FALSE_ALARM, {"level_shift": 12.0}, value=110.0),
            _alert(AlertLabel.REAL, {"residual_z": 50.0}, value=400.0),
        ]
    )
    assert said.thresholds == {"residual_z": MARGIN * 8.0, "level_shift": MARGIN * 12.0}
    assert said.deviations == {"residual_z": MARGIN * 30.0, "level_shift": MARGIN * 30.0}
    episodes = pd.DataFrame({"value": [120.0, 150.0, 5.0], "expected": [100.0, 100.0, np.nan]})
    kept = said.keep("level_shift", episodes)
    assert kept["value"].tolist() == [150.0, 5.0]  # a deviation of 20 ≤ 37.5 is dropped
    assert said.keep("stuck", episodes) is episodes and not Feedback()


def test_a_raised_threshold_is_a_copy_and_only_ever_rises():
    series = generate_readings(SignalModel(seed=3), START, periods=2000, interval=STEP)
    det = LevelShiftDetector().fit(series)
    assert det.raised_to(det.threshold_ - 1) is det
    raised = det.raised_to(det.threshold_ * 3)
    assert raised is not det and raised.threshold_ == det.threshold_ * 3
    stuck = StuckDetector().fit(series)
    assert stuck.raised_to(40.0).min_run_ == 40 and stuck.min_run_ < 40


def _plant(weeks: int) -> tuple[pd.Series, list[pd.Timestamp], list[pd.Timestamp]]:
    n = int(pd.Timedelta(weeks=weeks) / STEP)
    series = generate_readings(SignalModel(seed=1), START, periods=n, interval=STEP)
    values, index = series.to_numpy(copy=True), series.index
    bumps, reals = [], []
    for week in range(3, weeks):
        at = START + pd.Timedelta(weeks=week, days=2, hours=10)  # Wednesday 10:00
        values[(index >= at) & (index < at + pd.Timedelta("2h"))] += BUMP
        bumps.append(at)
        if week > 3:
            real_at = START + pd.Timedelta(weeks=week, days=5, hours=14)
            values[(index >= real_at) & (index < real_at + pd.Timedelta("12h"))] += REAL
            reals.append(real_at)
    return pd.Series(values, index=index), bumps, reals


def _hit(alerts, at: pd.Timestamp, span: str) -> bool:
    lo, hi = at - pd.Timedelta("1h"), at + pd.Timedelta(span) + pd.Timedelta("6h")
    return any(a.ts <= hi and (a.ends_at is None or a.ends_at >= lo) for a in alerts)


def _replay(store: Store, label: bool):
    series, bumps, reals = _plant(weeks=6)
    sensor = store.ensure_sensor("valve_flow", source=Source.IMPORTED, interval=STEP)
    for week in range(6):
        lo = START + pd.Timedelta(weeks=week)
        store.write_readings(
            sensor.id, series[(series.index >= lo) & (series.index < lo + pd.Timedelta(weeks=1))]
        )
        detect_sensor(store, "valve_flow")
        if label and week == 3:
            [first] = [a for a in store.list_alerts() if _hit([a], bumps[0], "2h")]
            flow.label(store, first.id, "false_alarm", actor="ann")
    alerts = store.list_alerts(limit=1000)
    repeats = sum(_hit(alerts, at, "2h") for at in bumps[1:])
    found = sum(_hit(alerts, at, "12h") for at in reals)
    return repeats, found, len(bumps) - 1, len(reals)


def test_a_labelled_false_alarm_does_not_recur_and_real_anomalies_still_alert(db_url, tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'before.db'}") as before:
        before.init()
        assert _replay(before, label=False) == (2, 2, 2, 2)  # unlabelled: it recurs
    with Store.open(db_url) as store:
        store.init()
        assert _replay(store, label=True) == (0, 2, 2, 2)
        explained = CliRunner().invoke(
            cli, ["detect", "--database-url", db_url, "--sensor", "valve_flow", "--explain"]
        )
        assert explained.exit_code == 0 and "thresholds at least" in explained.output


def test_evaluate_detectors_scores_against_the_plants_labels(store, db_url):
    sid = store.ensure_sensor("p1", source=Source.IMPORTED, interval=STEP).id
    from plantcast.store import alerts as alert_rows

    made = []
    for i, agreed in enumerate(
        [
            {"residual_z": 9.0, "level_shift": 12.0},
            {"level_shift": 7.0},
            {"stuck": 40.0},
            {"drift": 8.0},
        ]
    ):
        with store.write() as conn:
            made.append(
                alert_rows.insert_alert(
                    conn,
                    sid,
                    detector=next(iter(agreed)),
                    ts=START + pd.Timedelta(hours=i),
                    ends_at=START + pd.Timedelta(hours=i),
                    score=next(iter(agreed.values())),
                    value=1.0,
                    expected=0.0,
                    detectors=agreed,
                )
            )
    for alert_id, label in zip(made, ["real", "false_alarm", "real", "maintenance"], strict=True):
        flow.label(store, alert_id, label, actor="ann")
    rows = {r["detector"]: r for r in label_scores(store)}
    assert rows["combined"] == {
        "detector": "combined",
        "real": 2,
        "false_alarms": 1,
        "maintenance": 1,
        "precision": 2 / 3,
        "recall": 1.0,
    }
    assert (rows["level_shift"]["precision"], rows["level_shift"]["recall"]) == (0.5, 0.5)
    assert rows["drift"]["precision"] is None and rows["stuck"]["recall"] == 0.5
    done = CliRunner().invoke(
        cli, ["evaluate-detectors", "--labels", "--database-url", db_url, "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[0]["detector"] == "combined"
    table = CliRunner().invoke(cli, ["evaluate-detectors", "--labels", "--database-url", db_url])
    assert "level_shift" in table.stdout and "0.50" in table.stdout
