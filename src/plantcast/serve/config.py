"""The plant's config file: one TOML document, checked on load, environment on top.

``load_config(path)`` reads the file, lays the environment over it
(``PLANTCAST_<SECTION>__<KEY>``, e.g. ``PLANTCAST_API__PORT=8001``; the database URL also from
``PLANTCAST_DATABASE_URL`` or ``DATABASE_URL``), and validates the result with pydantic. Every
problem is reported at once, each with the key and the file's line (or the variable) it came
from. Secrets are never read from the file: a key that looks like one is refused with the
variable to set instead.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from plantcast.core.dburl import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from plantcast.core.errors import PlantcastError
from plantcast.serve.tomlpos import KeyLines, format_path

__all__ = ["ConfigError", "PlantConfig", "load_config", "parse_config", "seconds"]

ENV_PREFIX = "PLANTCAST_"
_PASSWORD_IN_URL = re.compile(r"^[\w+]+://[^/@:]*:[^/@]+@")
SECRET_WORDS = ("password", "secret", "token", "apikey", "api_key")
# Where each secret comes from instead (shown when a file holds one).
SECRET_ENV = {
    "database": "PLANTCAST_DATABASE_URL (or PGPASSWORD / ~/.pgpass)",
    "connectors.mqtt": "PLANTCAST_MQTT_USERNAME and PLANTCAST_MQTT_PASSWORD",
    "connectors.opcua": "PLANTCAST_OPCUA_USERNAME and PLANTCAST_OPCUA_PASSWORD",
    "notifications": "PLANTCAST_SMTP_PASSWORD (webhook secrets: plantcast notify add --secret-env)",
}


class ConfigError(PlantcastError):
    """A config that cannot run: every problem, each with where it came from."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            listed = "\n".join(f"  {p}" for p in problems)
            super().__init__(f"{len(problems)} problems in {source}:\n{listed}")


def _duration(text: str) -> str:
    seconds(text)  # raises ValueError with the reason
    return text


def seconds(text: str) -> float:
    """A duration's text ('30min', '2s', '7d') in seconds; ValueError if it is not one."""
    from plantcast.core.timeutil import parse_duration

    try:
        return float(parse_duration(text).total_seconds())
    except PlantcastError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


Duration = Annotated[str, AfterValidator(_duration)]
# The forecast models by name, as ``plantcast.forecast`` registers them (written out here, so a
# config is checked without importing the models; tests/test_serve_config.py keeps them equal).
BASE_MODEL_NAMES = (
    "seasonal_naive",
    "fourier_linear",
    "svr",
    "random_forest",
    "mstl",
    "ets",
    "theta",
    "lag_gbm",
    "lag_linear",
)
MODEL_NAMES = (*BASE_MODEL_NAMES, "auto")


def _one_of(names: tuple[str, ...], also: tuple[str, ...] = ()) -> AfterValidator:
    def check(text: str) -> str:
        if text not in names and text not in also:
            raise ValueError(f"unknown model {text!r}; choose from {', '.join(names)}")
        return text

    return AfterValidator(check)


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")]
Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(Section):
    url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy-style URL.")


class Mqtt(Section):
    name: Name
    broker: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://")
    topics: list[str] = Field(min_length=1)
    format: Literal["auto", "json", "number", "sparkplug"] = "auto"
    template: str | None = None
    name_format: str | None = None
    mapping: str | None = None
    value_field: str = "value"
    ts_field: str = "ts"
    unknown_sensors: Literal["create", "refuse"] = "create"
    interval: Duration = "1s"
    unit: str = ""
    client_id: str | None = Field(default=None, description="Default: plantcast-NAME.")
    batch_size: int = Field(default=5000, ge=1)
    flush: Duration = "200ms"


class Opcua(Section):
    name: Name
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    nodes: list[str] = []
    nodes_file: str | None = None
    sampling_interval: Duration = "1s"
    batch_size: int = Field(default=5000, ge=1)
    flush: Duration = "200ms"

    @model_validator(mode="after")
    def _some_nodes(self) -> Opcua:
        if not self.nodes and not self.nodes_file:
            raise ValueError("give nodes = [...] or nodes_file")
        return self


class Connectors(Section):
    mqtt: list[Mqtt] = []
    opcua: list[Opcua] = []

    @model_validator(mode="after")
    def _unique_names(self) -> Connectors:
        names = [c.name for c in self.mqtt] + [c.name for c in self.opcua]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"connector names must differ: {', '.join(twice)} used twice")
        return self


class Detection(Section):
    enabled: bool = True
    every: Duration = "5s"
    sensors: list[str] = []
    dask: bool = False
    workers: int | None = Field(default=None, ge=1)
    scheduler: str | None = Field(default=None, pattern=r"^tcp://")


class Forecasting(Section):
    enabled: bool = True
    every: Duration = Field(default="1h", description="How often every sensor is refitted.")
    model: Annotated[str, _one_of(MODEL_NAMES)] = "auto"
    horizon: Duration | None = Field(
        default=None,
        description="How far ahead; unset: a day of each sensor's readings (24 to 1,440).",
    )
    reselect_every: Duration = Field(
        default="7d", description="How often auto chooses each sensor's model again."
    )
    first_model: Annotated[str, _one_of(BASE_MODEL_NAMES, ("",))] = Field(
        default="fourier_linear",
        description="auto: a sensor's first forecast, made at once with this quick base model; "
        'auto chooses at the job\'s next look ("": auto chooses at the first).',
    )
    points: int = Field(
        default=60,
        ge=1,
        description="A stored forecast's steps at most: a faster sensor is forecast on the "
        "means of a coarser step (1 s readings, 10 min ahead: 10 s steps).",
    )
    dask: bool = False
    workers: int | None = Field(default=None, ge=1)
    scheduler: str | None = Field(default=None, pattern=r"^tcp://")


class Notifications(Section):
    enabled: bool = True
    poll: Duration = "1s"
    keep: Duration = "30d"


class Api(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: int = Field(default=1, ge=1)


class Dashboard(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8501


class Retention(Section):
    keep: Duration | None = Field(default=None, description="Unset: readings are kept forever.")
    every: Duration = "1d"


class Jobs(Section):
    enabled: bool = True
    seasons_every: Duration = "7d"
    partitions_every: Duration = "1d"
    reports_every: Duration = Field(
        default="1d", description="The backtest report of the stored forecasts' scores."
    )
    reports_dir: str = "reports"
    nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="The jobs process's CPU niceness: refits yield the CPU to ingest and "
        "detection, which people wait on (0: same priority).",
    )


class Serve(Section):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="0: no /metrics.")
    log_format: Literal["json", "text"] = "json"
    stop_timeout: Duration = "10s"
    backoff: Duration = "1s"
    max_backoff: Duration = "1min"
    status_every: Duration = "5s"


class PlantConfig(Section):
    """The whole file; every section optional (an empty file serves SQLite's defaults)."""

    database: Database = Database()
    connectors: Connectors = Connectors()
    detection: Detection = Detection()
    forecasting: Forecasting = Forecasting()
    notifications: Notifications = Notifications()
    api: Api = Api()
    dashboard: Dashboard = Dashboard()
    retention: Retention = Retention()
    jobs: Jobs = Jobs()
    serve: Serve = Serve()


SECTIONS = tuple(PlantConfig.model_fields)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> PlantConfig:
    """The config at ``path`` with the environment (``os.environ`` by default) laid over it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"{path}: cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, source=str(path), env=os.environ if env is None else env)


def parse_config(
    text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> PlantConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"{source}: not valid TOML: {exc}"]) from None
    lines = KeyLines(text)
    secrets = _secrets(data)
    problems = [_where(source, lines, p) + msg for p, msg in secrets]
    for path, _ in secrets:  # reported once, as a secret, not again as an unknown key
        _pop(data, path)
    url = data.get("database", {}).get("url") if isinstance(data.get("database"), dict) else None
    if isinstance(url, str) and _PASSWORD_IN_URL.match(url):
        problems.append(
            _where(source, lines, ("database", "url"))
            + "the URL holds a password: keep it out of the file (PLANTCAST_DATABASE_URL, "
            "PGPASSWORD or ~/.pgpass)"
        )
    origin: dict[tuple[str | int, ...], str] = {}
    try:
        for var, path, value in _env_overrides(env or {}):
            _set(data, path, value)
            origin[path] = var
    except ValueError as exc:
        problems.append(str(exc))
    try:
        config = PlantConfig.model_validate(data)
    except ValidationError as exc:
        problems += _explain(exc, source, lines, origin)
    if problems:
        raise ConfigError(source, problems)
    return config


def _where(source: str, lines: KeyLines, path: tuple[str | int, ...]) -> str:
    line = lines.line_of(path)
    at = f"{source}:{line}" if line is not None else source
    return f"{at}: {format_path(path)}: "


def _explain(exc: ValidationError, source: str, lines: KeyLines, origin: dict) -> list[str]:
    out = []
    for error in exc.errors():
        path = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key (known: {', '.join(_known(path[:-1]))})"
        elif error["type"] == "missing":
            message = "required key is missing"
        var = next((v for p, v in origin.items() if path[: len(p)] == p), None)
        where = f"${var}: {format_path(path)}: " if var else _where(source, lines, path)
        out.append(where + message)
    return out


def _known(path: tuple[str | int, ...]) -> list[str]:
    model: Any = PlantConfig
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = args[0] if args and isinstance(args[0], type) else annotation
    return list(getattr(model, "model_fields", {}))


def _secrets(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple, str]]:
    found: list[tuple[tuple, str]] = []
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data if isinstance(data, list) else [])
    )
    for key, value in items:
        here = (*path, key)
        if isinstance(key, str) and any(w in key.lower() for w in SECRET_WORDS):
            section = next((s for s in SECRET_ENV if format_path(path).startswith(s)), None)
            instead = SECRET_ENV.get(section or "", f"a {ENV_PREFIX}… environment variable")
            found.append((here, f"secrets are read from the environment only: set {instead}"))
        elif isinstance(value, (dict, list)):
            found += _secrets(value, here)
    return found


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, tuple[str | int, ...], Any]]:
    """``PLANTCAST_API__PORT=8001`` → ('api', 'port') = 8001; the database URL variables."""
    found: list[tuple[str, tuple[str | int, ...], Any]] = []
    for name in reversed(DATABASE_URL_ENV):  # the first one set wins, as everywhere else
        if name in env:
            found.append((name, ("database", "url"), env[name]))
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        if section not in SECTIONS or section == "connectors":
            if section == "connectors":
                raise ValueError(f"${var}: connectors are set in the file, one block each")
            continue
        found.append((var, (section, *key.split("__")), _value(raw)))
    return found


def _value(raw: str) -> Any:
    """A variable's text as a TOML value when it reads as one (8001, true, ["a"]), else text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set(data: dict, path: tuple[str | int, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{format_path(path)}: {format_path(path[:-1])} is not a table")
        node = child
    node[path[-1]] = value


def _pop(data: Any, path: tuple[str | int, ...]) -> None:
    for part in path[:-1]:
        data = data[part]
    del data[path[-1]]
