"""The backtest HTML report: self-contained, one panel per model, metrics shown."""

from __future__ import annotations

from plantcast.forecast import backtest, get_model
from plantcast.services.backtest_report import write_backtest_report
from plantcast.signals import SignalModel, generate_readings


def test_report_is_self_contained(tmp_path):
    s = generate_readings(SignalModel(), "2024-01-01", periods=6 * 48, interval="30min")
    results = {
        name: backtest(s, get_model(name), 24, step=12, windows=14)
        for name in ("fourier_linear", "seasonal_naive")
    }
    out = write_backtest_report(results, s, tmp_path / "r" / "report.html", title="Demo <x>")
    text = out.read_text(encoding="utf-8")
    assert text.count("<section>") == 2
    assert "Demo &lt;x&gt;" in text
    assert 'src="http' not in text  # plotly.js is inlined: no script is fetched
    assert len(text) > 1_000_000 and text.count("Plotly.newPlot") == 2
    assert "MASE" in text and "cover 80 %" in text
