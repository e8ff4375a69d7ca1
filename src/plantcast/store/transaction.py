"""The unit of work: the store's calls that other layers compose into one transaction.

``with store.transaction() as tx:`` opens one transaction; every call on ``tx`` runs in it and
the whole commits on leaving the block or rolls back on an error. Callers outside the store never
see a connection: the methods below are the store's own row functions, bound to this transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from plantcast.store import alerts as _alerts
from plantcast.store import apikeys as _apikeys
from plantcast.store import assets as _assets
from plantcast.store import audit as _audit
from plantcast.store import catalog as _catalog
from plantcast.store import dead_letters as _dead_letters
from plantcast.store import events as _events
from plantcast.store import fits as _fits
from plantcast.store import forecasts as _forecasts
from plantcast.store import limits as _limits
from plantcast.store import notes as _notes
from plantcast.store import notifications as _outbox
from plantcast.store import overview as _overview
from plantcast.store import partitions as _partitions
from plantcast.store import readings as _readings
from plantcast.store import silences as _silences
from plantcast.store import users as _users

P = ParamSpec("P")
R = TypeVar("R")


def _bound(fn: Callable[Concatenate[Connection, P], R]) -> Callable[Concatenate[Transaction, P], R]:
    """A row function of a store module as a method of the transaction it runs in."""

    def method(self: Transaction, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.conn, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _changes_coverage(
    fn: Callable[Concatenate[Connection, P], R],
) -> Callable[Concatenate[Transaction, P], R]:
    """:func:`_bound`, for a call that changes what silences cover (silences, assets): the
    transaction's next alert reads them again."""
    bound = _bound(fn)

    def method(self: Transaction, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.silencer.forget()
        return bound(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


class Transaction:
    """One open transaction (see the module docstring); made by :meth:`Store.transaction`."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        # which silence covers each alert this transaction inserts: the silences read once
        self.silencer = _silences.Silencer(conn)

    def insert_alert(self, /, sensor_id: int | None, **fields: Any) -> int:
        """A new alert of a sensor, or (``sensor_id`` None, ``asset_id=`` given) of an asset;
        the silences are read at the transaction's first alert, not at each."""
        return _alerts.insert_alert(self.conn, sensor_id, silencer=self.silencer, **fields)

    # -- sensors ---------------------------------------------------------------------------
    get_sensor = _bound(_catalog.get_sensor)
    ensure_sensor = _bound(_catalog.ensure_sensor)
    set_interval = _bound(_catalog.set_interval)
    drop_sensor_if_empty = _bound(_catalog.drop_sensor_if_empty)
    sensors_by_name = _bound(_catalog.sensors_by_name)
    clocks_many = _bound(_catalog.clocks_many)
    set_clocks = _bound(_catalog.set_clocks)

    # -- assets (plantcast.services.assets keeps their rules) ------------------------------
    get_asset = _bound(_assets.get_asset)
    find_asset = _bound(_assets.find_asset)
    list_assets = _bound(_assets.list_assets)
    assets_of_sensor = _bound(_assets.assets_of_sensor)
    insert_asset = _bound(_assets.insert_asset)
    add_asset_sensors = _changes_coverage(_assets.add_members)
    remove_asset_sensors = _changes_coverage(_assets.remove_members)
    delete_asset = _changes_coverage(_assets.delete_asset)
    set_asset_training = _bound(_assets.set_training)
    set_asset_step = _bound(_assets.set_step)

    # -- readings --------------------------------------------------------------------------
    write_readings = _bound(_readings.write_readings)
    write_batch = _bound(_readings.write_batch)
    write_batch_arrays = _bound(_readings.write_batch_arrays)
    read_series = _bound(_readings.read_series)
    read_series_many = _bound(_readings.read_series_many)
    edge_readings = _bound(_readings.edge_readings)
    ensure_partitions = _bound(_partitions.ensure_partitions)
    analyze_span = _bound(_partitions.analyze_span)

    # -- events, alerts and how far detection has scored -----------------------------------
    events_of_sensors = _bound(_events.events_of_sensors)
    add_event = _bound(_events.add_event)
    end_open_events = _bound(_events.end_open_events)
    list_alerts = _bound(_alerts.list_alerts)
    count_alerts = _bound(_alerts.count_alerts)
    get_alert = _bound(_alerts.get_alert)
    set_alert_status = _bound(_alerts.set_alert_status)
    set_alert_assignee = _bound(_alerts.set_assignee)
    set_alert_label = _bound(_alerts.set_label)
    add_alert_comment = _bound(_alerts.add_comment)
    alert_comments = _bound(_alerts.list_comments)
    labelled_alerts = _bound(_alerts.labelled_alerts)
    sensor_names = _bound(_alerts.sensor_names)
    update_alert = _bound(_alerts.update_alert)
    alerts_reaching_many = _bound(_alerts.alerts_reaching_many)
    ongoing_alerts = _bound(_alerts.ongoing_alerts)
    get_scored_until = _bound(_alerts.get_scored_until)
    set_scored_until = _bound(_alerts.set_scored_until)
    scored_until_many = _bound(_alerts.scored_until_many)
    set_scored_until_many = _bound(_alerts.set_scored_until_many)
    has_alerts_of_asset = _bound(_alerts.has_alerts_of_asset)
    alerts_of_assets = _bound(_alerts.alerts_of_assets)
    asset_names = _bound(_alerts.asset_names)
    asset_scored_until = _bound(_alerts.asset_scored_until)
    set_asset_scored_until = _bound(_alerts.set_asset_scored_until)
    forget_asset_state = _bound(_alerts.forget_asset_state)

    # -- fitted detector state (derived: a pass refits what is missing) ---------------------
    get_fit = _bound(_fits.get_fit)
    fits_many = _bound(_fits.fits_many)
    fit_stamps_many = _bound(_fits.fit_stamps_many)
    put_fit = _bound(_fits.put_fit)
    put_fits = _bound(_fits.put_fits)
    asset_fits_many = _bound(_fits.asset_fits_many)
    put_asset_fits = _bound(_fits.put_asset_fits)
    forget_asset_fits = _bound(_fits.forget_asset_fits)

    # -- forecasts kept ready (derived: a refresh refits what is missing or old) -----------
    get_forecast = _bound(_forecasts.get_forecast)
    list_forecasts = _bound(_forecasts.list_forecasts)
    forecast_plans = _bound(_forecasts.forecast_plans)
    oldest_forecast = _bound(_forecasts.oldest_made_at)
    put_forecasts = _bound(_forecasts.put_forecasts)

    # -- silences, annotations and limits (plantcast.services.silences, notes, limits) -------
    insert_silence = _changes_coverage(_silences.insert_silence)
    get_silence = _bound(_silences.get_silence)
    end_silence = _changes_coverage(_silences.end_silence)
    list_silences = _bound(_silences.list_silences)
    silence_targets = _bound(_silences.targets_of_sensor)
    insert_annotation = _bound(_notes.insert_annotation)
    get_annotation = _bound(_notes.get_annotation)
    update_annotation = _bound(_notes.update_annotation)
    delete_annotation = _bound(_notes.delete_annotation)
    list_annotations = _bound(_notes.list_annotations)
    get_limits = _bound(_limits.get_limits)
    limits_many = _bound(_limits.limits_many)
    put_limits = _bound(_limits.put_limits)
    delete_limits = _bound(_limits.delete_limits)

    # -- the audit trail (append-only; plantcast.services.audit builds the entries) ---------
    audit = _bound(_audit.record)
    audit_entries = _bound(_audit.list_entries)

    # -- users (plantcast.services.users keeps the roles) ----------------------------------
    find_user = _bound(_users.find_user)
    get_user = _bound(_users.get_user)
    user_by_id = _bound(_users.user_by_id)
    list_users = _bound(_users.list_users)
    insert_user = _bound(_users.insert_user)
    set_user_role = _bound(_users.set_user_role)
    disable_user = _bound(_users.disable_user)

    # -- API keys (plantcast.services.apikeys) ----------------------------------------------
    add_api_key = _bound(_apikeys.add_api_key)
    revoke_api_key = _bound(_apikeys.revoke_api_key)
    list_api_keys = _bound(_apikeys.list_api_keys)

    # -- the plant overview (two statements whatever the number of sensors) -----------------
    sensor_summaries = _bound(_overview.sensor_summaries)
    sparklines = _bound(_overview.sparklines)
    asset_summaries = _bound(_overview.asset_summaries)

    # -- dead letters ----------------------------------------------------------------------
    add_dead_letters = _bound(_dead_letters.add_dead_letters)

    # -- notification outbox ---------------------------------------------------------------
    add_destination = _bound(_outbox.add_destination)
    get_destination = _bound(_outbox.get_destination)
    list_destinations = _bound(_outbox.list_destinations)
    remove_destination = _bound(_outbox.remove_destination)
    outbox_summary = _bound(_outbox.outbox_summary)
    due_notifications = _bound(_outbox.due)
    mark_delivered = _bound(_outbox.mark_delivered)
    mark_failed = _bound(_outbox.mark_failed)
    purge_delivered = _bound(_outbox.purge_delivered)
