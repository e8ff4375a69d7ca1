"""Named simulated sensors: the reference demo's reservoir pressure and two plant neighbours."""

from __future__ import annotations

from dataclasses import dataclass

from plantcast.signals.model import Cycle, SignalModel


@dataclass(frozen=True)
class Preset:
    name: str
    unit: str
    description: str
    model: SignalModel
    periods: tuple[str, ...] = ("24h",)  # the seasonal periods its models should use


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "reservoir_pressure",
            "bar",
            "Reservoir pressure: the reference demo's signal (100 ± 10 daily, uniform noise ±2).",
            SignalModel(),
        ),
        Preset(
            "wellhead_temperature",
            "°C",
            "Wellhead temperature: warm by day, cooler at night, Gaussian sensor noise.",
            SignalModel(
                baseline=68.0,
                cycles=(Cycle.of(4.0, "24h", "6h"), Cycle.of(1.0, "12h")),
                noise=0.4,
                noise_kind="gaussian",
                seed=11,
            ),
        ),
        Preset(
            "export_flow",
            "m³/h",
            "Export flow: a daily demand cycle on top of a weekly one (weekends run lower).",
            SignalModel(
                baseline=420.0,
                cycles=(Cycle.of(35.0, "24h", "3h"), Cycle.of(25.0, "7d", "1d")),
                noise=6.0,
                noise_kind="gaussian",
                seed=23,
            ),
            periods=("24h", "7d"),
        ),
    )
}

DEMO_SENSORS = tuple(PRESETS)


def model_for(name: str) -> SignalModel:
    """The preset model for ``name``, or the demo's default signal for any other name."""
    preset = PRESETS.get(name)
    return preset.model if preset else SignalModel()
