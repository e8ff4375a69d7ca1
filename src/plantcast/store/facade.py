"""The Store facade: engine lifecycle, transactions, and the calls other layers make."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from plantcast.core.errors import StoreError, StoreUnavailable
from plantcast.core.timeutil import TimeLike
from plantcast.core.types import Alert, AlertStatus, Asset, Event, EventKind, Sensor, Source
from plantcast.store import alerts as _alerts
from plantcast.store import apikeys as _apikeys
from plantcast.store import assets as _assets
from plantcast.store import catalog as _catalog
from plantcast.store import dead_letters as _dead_letters
from plantcast.store import events as _events
from plantcast.store import health as _health
from plantcast.store import overview as _overview
from plantcast.store import partitions as _partitions
from plantcast.store import readings as _readings
from plantcast.store.engine import make_engine, redact
from plantcast.store.schema import metadata
from plantcast.store.transaction import Transaction

# Errors that mean "the database is not reachable right now" rather than "your query is wrong".
TRANSIENT_ERRORS = (OperationalError,)


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed (connection lost, server down, locked)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


class Store:
    """One database: SQLite file or PostgreSQL server, behind the same methods."""

    def __init__(self, engine: Engine, url: str | None = None) -> None:
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(make_engine(url), redact(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back whole on any error."""
        with self._connect(sqlite_begin="IMMEDIATE") as conn, conn.begin():
            yield conn

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        """A unit of work for callers outside the store: every call on the yielded
        :class:`Transaction` runs in one transaction, committed whole or rolled back whole."""
        with self.read() if readonly else self.write() as conn:
            yield Transaction(conn, self.dialect)

    @contextmanager
    def _connect(self, **options: Any) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot connect to {self.url}: {_first_line(exc)}") from exc
        try:
            yield conn.execution_options(**options) if options else conn
        except SQLAlchemyError as exc:
            # A connection lost mid-transaction is an outage, not a bug: say so in one line.
            if is_transient(exc):
                raise StoreUnavailable(f"lost the database {self.url}: {_first_line(exc)}") from exc
            raise StoreError(f"the database refused the operation: {_first_line(exc)}") from exc
        finally:
            conn.close()

    # -- schema ---------------------------------------------------------------------------
    def init(self) -> list[str]:
        """Create the tables that are missing and add the columns added since (idempotent);
        returns what was done (empty when the schema was already current)."""
        with self.write() as conn:
            have = set(inspect(conn).get_table_names())
            done = [f"{t} created" for t in metadata.tables if t not in have]
            metadata.create_all(conn, checkfirst=True)
            if have:  # an older database: columns added since its tables were first made
                done += _dead_letters.upgrade(conn)
                done += _alerts.upgrade(conn)
                done += _apikeys.upgrade(conn)
            _partitions.create_ahead(conn)
        with self.read() as conn:
            rebuild = _alerts.sqlite_needs_rebuild(conn)
        if rebuild:  # SQLite drops a NOT NULL only by rebuilding the table, foreign keys off
            raw = self.engine.raw_connection()
            try:
                done += _alerts.rebuild_sqlite(raw.driver_connection)
            finally:
                raw.close()
        return done

    def needs_migration(self) -> bool:
        """True for a PostgreSQL ``readings`` table made before partitioning (run migrate)."""
        with self.read() as conn:
            return self.dialect == "postgresql" and _partitions.table_kind(conn) == "plain"

    def missing_tables(self, names: Iterable[str]) -> list[str]:
        """Which of these tables the database lacks (made by a plantcast older than them)."""
        with self.read() as conn:
            have = set(inspect(conn).get_table_names())
        return [n for n in names if n not in have]

    def is_initialized(self) -> bool:
        with self.read() as conn:
            return inspect(conn).has_table("readings")

    # -- sensors --------------------------------------------------------------------------
    def ensure_sensor(self, name: str, **attrs: Any) -> Sensor:
        with self.write() as conn:
            return _catalog.ensure_sensor(conn, name, **attrs)

    def get_sensor(self, name: str) -> Sensor:
        with self.read() as conn:
            return _catalog.get_sensor(conn, name)

    def list_sensors(self, source: Source | None = None) -> list[Sensor]:
        with self.read() as conn:
            found = _catalog.list_sensors(conn)
        return [s for s in found if source is None or s.source == source]

    def data_time(self, sensor_id: int) -> pd.Timestamp | None:
        """The sensor's 'now': its last reading or its streamer's clock, whichever is later."""
        with self.read() as conn:
            last = _readings.last_reading(conn, sensor_id)
            clock = _catalog.get_clock(conn, sensor_id)
        found = [t for t in (None if last is None else last[0], clock) if t is not None]
        return max(found) if found else None

    def sensor_params(self, sensor_id: int) -> dict[str, Any]:
        with self.read() as conn:
            return _catalog.sensor_params(conn, sensor_id)

    def update_sensor_params(self, sensor_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        with self.write() as conn:
            return _catalog.update_params(conn, sensor_id, changes)

    def update_many_sensor_params(self, changes: dict[int, dict[str, Any]]) -> None:
        """``update_sensor_params`` of many sensors in one transaction (one commit, not one a
        sensor: a wide import of 1,000 tags)."""
        with self.write() as conn:
            for sensor_id, change in changes.items():
                _catalog.update_params(conn, sensor_id, change)

    def params_and_last_ts(self, sensor_id: int) -> tuple[dict[str, Any], pd.Timestamp | None]:
        with self.read() as conn:
            return _catalog.params_and_last_ts(conn, sensor_id)

    # -- assets ---------------------------------------------------------------------------
    def get_asset(self, name: str) -> Asset:
        with self.read() as conn:
            return _assets.get_asset(conn, name)

    def list_assets(self) -> list[Asset]:
        with self.read() as conn:
            return _assets.list_assets(conn)

    def assets_of_sensor(self, sensor_id: int) -> list[str]:
        with self.read() as conn:
            return _assets.assets_of_sensor(conn, sensor_id)

    # -- readings -------------------------------------------------------------------------
    def write_readings(self, sensor_id: int, series: pd.Series) -> int:
        with self.write() as conn:
            return _readings.write_readings(conn, sensor_id, series)

    def write_batch(
        self,
        batch: pd.DataFrame | Mapping[str, npt.ArrayLike],
        dead_letters: Iterable[_dead_letters.DeadLetter] = (),
    ) -> int:
        """Upsert readings of many sensors (``sensor_id, ts, value`` columns) in one statement.

        ``dead_letters`` (connectors) are stored in the same transaction: a batch and what could
        not be parsed beside it commit together or not at all."""
        with self.write() as conn:
            written = _readings.write_batch(conn, batch)
            _dead_letters.add_dead_letters(conn, dead_letters)
            return written

    def read_series(self, sensor_id: int, start: TimeLike, end: TimeLike) -> pd.Series:
        with self.read() as conn:
            return _readings.read_series(conn, sensor_id, start, end)

    def read_tail(self, sensor_id: int, n: int, end: TimeLike | None = None) -> pd.Series:
        with self.read() as conn:
            return _readings.read_tail(conn, sensor_id, n, end)

    def read_buckets(
        self, sensor_id: int, start: TimeLike, end: TimeLike, buckets: int
    ) -> pd.DataFrame:
        with self.read() as conn:
            return _readings.read_buckets(conn, sensor_id, start, end, buckets)

    def last_reading(self, sensor_id: int) -> tuple[pd.Timestamp, float] | None:
        with self.read() as conn:
            return _readings.last_reading(conn, sensor_id)

    def last_timestamp(self, sensor_id: int) -> pd.Timestamp | None:
        last = self.last_reading(sensor_id)
        return None if last is None else last[0]

    def last_readings(self, sensor_ids: Iterable[int]) -> dict[int, tuple[pd.Timestamp, float]]:
        """``last_reading`` of many sensors, one statement per 500 (an index seek each);
        sensors without readings are left out."""
        bounds = [(int(i), None) for i in dict.fromkeys(sensor_ids)]
        with self.read() as conn:
            return _readings.edge_readings(conn, bounds, last=True)

    def first_timestamp(self, sensor_id: int) -> pd.Timestamp | None:
        with self.read() as conn:
            return _readings.first_timestamp(conn, sensor_id)

    def count_readings(
        self, sensor_id: int, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> int:
        with self.read() as conn:
            return _readings.count_readings(conn, sensor_id, start, end)

    # -- events ---------------------------------------------------------------------------
    def add_event(
        self, sensor_id: int, kind: EventKind, starts_at: TimeLike, **fields: Any
    ) -> Event:
        with self.write() as conn:
            return _events.add_event(conn, sensor_id, kind, starts_at, **fields)

    def events_overlapping(self, sensor_id: int, start: TimeLike, end: TimeLike) -> list[Event]:
        with self.read() as conn:
            return _events.events_overlapping(conn, sensor_id, start, end)

    def events_of_sensors(
        self, sensor_ids: Iterable[int], start: TimeLike, end: TimeLike
    ) -> dict[int, list[Event]]:
        with self.read() as conn:
            return _events.events_of_sensors(conn, sensor_ids, start, end)

    def end_open_events(self, sensor_id: int, at: TimeLike) -> int:
        with self.write() as conn:
            return _events.end_open_events(conn, sensor_id, at)

    # -- alerts ---------------------------------------------------------------------------
    def list_alerts(self, **filters: Any) -> list[Alert]:
        with self.read() as conn:
            return _alerts.list_alerts(conn, **filters)

    def set_alert_status(self, alert_id: int, status: AlertStatus | str) -> Alert:
        with self.write() as conn:
            return _alerts.set_alert_status(conn, alert_id, status)

    def count_alerts(self, **filters: Any) -> int:
        with self.read() as conn:
            return _alerts.count_alerts(conn, **filters)

    def asset_names(self) -> dict[int, str]:
        """Every asset's name by id (what an asset alert's record names)."""
        with self.read() as conn:
            return _alerts.asset_names(conn)

    def count_open_alerts(self, sensor_id: int | None = None) -> int:
        with self.read() as conn:
            return _alerts.count_open_alerts(conn, sensor_id)

    # -- the plant overview ---------------------------------------------------------------
    def sensor_summaries(self) -> list[_overview.SensorSummary]:
        with self.read() as conn:
            return _overview.sensor_summaries(conn)

    def sparklines(
        self, sensor_ids: Iterable[int], span: pd.Timedelta, buckets: int
    ) -> dict[int, list[float | None]]:
        with self.read() as conn:
            return _overview.sparklines(conn, sensor_ids, span, buckets)

    # -- dead letters ---------------------------------------------------------------------
    def add_dead_letters(self, letters: Iterable[_dead_letters.DeadLetter]) -> int:
        with self.write() as conn:
            return _dead_letters.add_dead_letters(conn, letters)

    def list_dead_letters(self, **filters: Any) -> list[_dead_letters.DeadLetter]:
        with self.read() as conn:
            return _dead_letters.list_dead_letters(conn, **filters)

    def count_dead_letters(self, **filters: Any) -> dict[str, int]:
        with self.read() as conn:
            return _dead_letters.count_dead_letters(conn, **filters)

    # -- API keys (plantcast.api) ---------------------------------------------------------
    def add_api_key(
        self, name: str, prefix: str, token_hash: str, scopes: tuple[str, ...]
    ) -> _apikeys.ApiKey:
        with self.write() as conn:
            return _apikeys.add_api_key(conn, name, prefix, token_hash, scopes)

    def list_api_keys(self) -> list[_apikeys.ApiKey]:
        with self.read() as conn:
            return _apikeys.list_api_keys(conn)

    def find_api_key(self, token_hash: str) -> _apikeys.ApiKey | None:
        with self.read() as conn:
            return _apikeys.find_api_key(conn, token_hash)

    def revoke_api_key(self, key_id: int) -> _apikeys.ApiKey:
        with self.write() as conn:
            return _apikeys.revoke_api_key(conn, key_id)

    def touch_api_key(self, key_id: int) -> None:
        with self.write() as conn:
            _apikeys.touch_api_key(conn, key_id)

    def scored_until(
        self, sensor_id: int, detectors: Iterable[str]
    ) -> dict[str, pd.Timestamp | None]:
        """How far each detector has scored the sensor (None: never)."""
        with self.read() as conn:
            return {d: _alerts.get_scored_until(conn, sensor_id, d) for d in detectors}

    # -- what serve runs (plantcast.serve) and how far behind it is ------------------------
    def put_components(
        self, states: Iterable[_health.ComponentState], *, only: bool = False
    ) -> None:
        with self.write() as conn:
            _health.put_components(conn, states, only=only)

    def list_components(self) -> list[_health.ComponentState]:
        with self.read() as conn:
            return _health.list_components(conn)

    def put_job(self, job: _health.JobState) -> None:
        with self.write() as conn:
            _health.put_job(conn, job)

    def get_job(self, name: str) -> _health.JobState | None:
        with self.read() as conn:
            return _health.get_job(conn, name)

    def list_jobs(self) -> list[_health.JobState]:
        with self.read() as conn:
            return _health.list_jobs(conn)

    def lags(self, now: TimeLike | None = None) -> _health.Lags:
        with self.read() as conn:
            return _health.lags(conn, None if now is None else pd.Timestamp(now))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
