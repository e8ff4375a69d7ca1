"""Domain types shared by the layers: sensor descriptions, event kinds, alert states."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the CLI imports these types without pandas
    import pandas as pd

# What a sensor or asset may be called: it is typed on command lines, in URL paths and in MQTT
# topic templates, so no spaces, slashes or NUL; at most 200 characters (the column's size).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"


class Source(StrEnum):
    SIMULATED = "simulated"
    IMPORTED = "imported"
    MQTT = "mqtt"
    OPCUA = "opcua"


class EventKind(StrEnum):
    LEVEL_SHIFT = "level_shift"
    SPIKE = "spike"
    DRIFT = "drift"
    STUCK = "stuck"
    DROPOUT = "dropout"
    NOISE_BURST = "noise_burst"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertLabel(StrEnum):
    """What people said an alert was: a real anomaly, a false alarm, or planned maintenance."""

    REAL = "real"
    FALSE_ALARM = "false_alarm"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Sensor:
    id: int
    name: str
    unit: str
    description: str
    source: Source
    interval: pd.Timedelta
    created_at: pd.Timestamp


@dataclass(frozen=True)
class Event:
    id: int
    sensor_id: int
    kind: EventKind
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp | None
    magnitude: float
    note: str

    def active_at(self, ts: pd.Timestamp) -> bool:
        return self.starts_at <= ts and (self.ends_at is None or ts < self.ends_at)


@dataclass(frozen=True)
class Alert:
    """One episode of a sensor (``sensor_id``) or of an asset (``asset_id``; ``sensor_id`` is
    then None and ``contributors`` ranks the asset's sensors at the peak)."""

    id: int
    sensor_id: int | None
    ts: pd.Timestamp
    ends_at: pd.Timestamp | None
    detector: str
    score: float
    value: float
    expected: float | None
    status: AlertStatus
    created_at: pd.Timestamp
    # every detector that flagged this episode, in the order they joined: {name: peak score}
    # (the first is ``detector``, whose peak are ``score``, ``value`` and ``expected``)
    detectors: dict[str, float] = field(default_factory=dict)
    asset_id: int | None = None
    # an asset alert's sensors by their share of its score at the peak, largest first:
    # {sensor name: share in 0..1} (empty on a sensor's alert)
    contributors: dict[str, float] = field(default_factory=dict)
    silenced: bool = False  # raised inside a silence: stored, never notified
    details: dict[str, Any] = field(default_factory=dict)  # a limit alarm's limit, level, …
    assignee: str | None = None  # who is on it (a user name), if anyone
    label: AlertLabel | None = None  # what people said it was, if they did
    # the end of its newest episode of a memoryless detector (dropout), where one is kept
    seen_until: pd.Timestamp | None = None


@dataclass(frozen=True)
class Ongoing:
    """A sensor's alerts still ongoing, as a detect pass plans around them: the oldest one's
    start and every detector that agreed on any of them (those of memoryless detectors that
    keep where their episode ended left out: they are not rescored)."""

    since: pd.Timestamp
    detectors: frozenset[str]


@dataclass(frozen=True)
class AlertComment:
    id: int
    alert_id: int
    at: pd.Timestamp
    author: str
    text: str


@dataclass(frozen=True)
class Asset:
    """A group of sensors watched together (a pump, a line): multivariate detection aligns
    its sensors on one grid. A sensor may belong to several assets."""

    id: int
    name: str
    description: str
    step: pd.Timedelta | None  # the grid's step as set; None: the slowest member's interval
    train_from: pd.Timestamp | None  # a pinned known-good period for training (both or none)
    train_to: pd.Timestamp | None
    created_at: pd.Timestamp
    sensors: tuple[Sensor, ...]  # in the order they joined

    @property
    def grid_step(self) -> pd.Timedelta:
        """The step its sensors are aligned on: the one set, else the slowest sensor's
        interval (no sensor is then sampled faster than it reports)."""
        if self.step is not None:
            return self.step
        return max(s.interval for s in self.sensors)

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sensors)
