"""Monthly partitions of readings on PostgreSQL: init, the writer's hook, pruning, migrate,
retention (retention on SQLite too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, event

from plantcast.cli.main import cli
from plantcast.core.errors import StoreError
from plantcast.core.types import Source
from plantcast.store import Store, maintenance
from plantcast.store import partitions as parts
from plantcast.store.schema import metadata

NOW = pd.Timestamp("2026-11-15", tz="UTC")


def _sensor(store: Store, name: str = "p"):
    return store.ensure_sensor(name, source=Source.SIMULATED, interval=pd.Timedelta("1h"))


def _series(start, end, freq="1h", seed=0) -> pd.Series:
    idx = pd.date_range(start, end, freq=freq, tz="UTC", inclusive="left")
    return pd.Series(np.random.default_rng(seed).normal(100, 5, len(idx)), index=idx)


def _partition_names(store: Store) -> list[str]:
    with store.read() as conn:
        return [p.name for p in parts.list_partitions(conn)]


@pytest.fixture
def pg_store(pg_url):
    s = Store.open(pg_url)
    s.init()
    yield s
    s.close()


@pytest.mark.postgres
def test_init_partitions_readings_around_now(pg_store):
    with pg_store.read() as conn:
        assert parts.table_kind(conn) == "partitioned"
    now = parts.month_of(pd.Timestamp.now(tz="UTC"))
    expected = [
        parts.partition_name(m)
        for m in range(now - parts.MONTHS_BEHIND, now + parts.MONTHS_AHEAD + 1)
    ]
    assert _partition_names(pg_store) == expected
    assert not pg_store.needs_migration()
    pg_store.init()  # idempotent
    assert _partition_names(pg_store) == expected


def test_names_are_strict():
    assert parts.partition_name(2026 * 12 + 10) == "readings_p202611"
    assert parts.parse_partition("readings_p202611") == 2026 * 12 + 10
    for bad in ("readings_p202613", "readings_p2026111", 'readings_p202611"; drop', "x_p202611"):
        assert parts.parse_partition(bad) is None


@pytest.mark.postgres
def test_a_batch_in_a_month_without_partition_creates_it(pg_store):
    sensor = _sensor(pg_store)
    old = _series("2019-03-30", "2019-04-02")  # two months, far from now
    assert "readings_p201903" not in _partition_names(pg_store)
    assert pg_store.write_readings(sensor.id, old) == len(old)
    names = _partition_names(pg_store)
    assert {"readings_p201903", "readings_p201904"} <= set(names)
    assert "readings_p201905" not in names  # only the months the batch holds
    assert pg_store.count_readings(sensor.id) == len(old)
    # Years apart in one batch: only the months that hold readings, not the span between.
    gap = pd.concat([_series("2015-01-01", "2015-01-02"), _series("2018-06-01", "2018-06-02")])
    pg_store.write_readings(sensor.id, gap)
    names = set(_partition_names(pg_store))
    assert {"readings_p201501", "readings_p201806"} <= names
    assert "readings_p201601" not in names


@pytest.mark.postgres
def test_a_multi_sensor_batch_creates_its_months_too(pg_store):
    a, b = _sensor(pg_store, "a"), _sensor(pg_store, "b")
    batch = pd.DataFrame(
        {
            "sensor_id": [a.id, b.id, a.id],
            "ts": pd.to_datetime(
                ["2017-07-31 23:00", "2017-08-01 00:00", "2021-02-03 00:00"], utc=True
            ),
            "value": [1.0, 2.0, 3.0],
        }
    )
    assert pg_store.write_batch(batch) == 3
    assert {"readings_p201707", "readings_p201708", "readings_p202102"} <= set(
        _partition_names(pg_store)
    )
    assert pg_store.count_readings(a.id) == 2 and pg_store.count_readings(b.id) == 1


@pytest.mark.postgres
def test_a_rolled_back_creation_is_not_remembered(pg_store):
    sensor = _sensor(pg_store)
    batch = _series("2012-05-01", "2012-05-02")
    with pytest.raises(RuntimeError), pg_store.write() as conn:
        from plantcast.store import readings as _readings

        _readings.write_readings(conn, sensor.id, batch)
        raise RuntimeError("abort the batch")
    assert "readings_p201205" not in _partition_names(pg_store)
    pg_store.write_readings(sensor.id, batch)  # the cache must not claim it exists
    assert pg_store.count_readings(sensor.id) == len(batch)


def _plan_relations(plan: dict) -> set[str]:
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _plan_relations(child)
    return found


@pytest.mark.postgres
def test_a_three_day_read_touches_one_or_two_partitions(pg_store):
    sensor = _sensor(pg_store)
    pg_store.write_readings(sensor.id, _series("2025-09-01", "2026-03-01"))  # six months
    assert len(_partition_names(pg_store)) >= 6
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM readings" in statement and "ORDER BY ts" in statement:
            captured.append((statement, parameters))

    event.listen(pg_store.engine, "before_cursor_execute", capture)
    try:
        for start in ("2025-11-10", "2025-11-29"):  # inside a month, and across a boundary
            captured.clear()
            t0 = pd.Timestamp(start, tz="UTC")
            got = pg_store.read_series(sensor.id, t0, t0 + pd.Timedelta("3D"))
            assert len(got) == 72
            ((statement, params),) = captured
            with pg_store.read() as conn, conn.connection.dbapi_connection.cursor() as cur:
                cur.execute("EXPLAIN (FORMAT JSON) " + statement, params)
                plan = cur.fetchone()[0][0]["Plan"]
            touched = {r for r in _plan_relations(plan) if r.startswith("readings")}
            assert 1 <= len(touched) <= 2, touched
            assert touched <= {"readings_p202511", "readings_p202512"}
    finally:
        event.remove(pg_store.engine, "before_cursor_execute", capture)


@pytest.mark.postgres
def test_no_default_partition_means_a_loud_error_not_a_silent_home(pg_store):
    sensor = _sensor(pg_store)
    with pytest.raises(StoreError, match="no partition"), pg_store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO readings (sensor_id, ts, value) VALUES (%s, '1999-01-01Z', 1.0)",
            (sensor.id,),
        )


def test_sqlite_stays_one_plain_table(sqlite_url):
    with Store.open(sqlite_url) as store:
        store.init()
        sensor = _sensor(store)
        store.write_readings(sensor.id, _series("2019-03-30", "2019-04-02"))
        assert _partition_names(store) == []
        assert not store.needs_migration()


# -- migrate ----------------------------------------------------------------------------------
_CHECKSUM = (
    "SELECT count(*), md5(string_agg(sensor_id || '/' || "
    "(extract(epoch from ts) * 1000000)::bigint || '/' || value::text, ',' "
    "ORDER BY sensor_id, ts)) FROM readings"
)


def _checksum(store: Store):
    with store.read() as conn:
        return tuple(conn.exec_driver_sql(_CHECKSUM).one())


def _legacy_store(pg_url) -> Store:
    """A store whose readings table was made before partitioning (a plain table)."""
    legacy = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(legacy)
    legacy.tables["readings"].dialect_options["postgresql"]["partition_by"] = None
    store = Store.open(pg_url)
    with store.write() as conn:
        legacy.create_all(conn)
    return store


@pytest.mark.postgres
def test_migrate_moves_every_row_and_is_idempotent(pg_url):
    store = _legacy_store(pg_url)
    a, b = _sensor(store, "a"), _sensor(store, "b")
    store.write_readings(a.id, _series("2025-10-15", "2026-02-10", seed=1))
    store.write_readings(b.id, _series("2025-12-20", "2026-01-05", freq="10min", seed=2))
    before = _checksum(store)
    assert before[0] > 5000 and store.needs_migration()

    runner = CliRunner()
    init = runner.invoke(cli, ["init", "--database-url", pg_url])
    assert init.exit_code == 0, init.output
    assert "run `plantcast migrate`" in init.output
    assert store.needs_migration()  # init never migrates on its own

    done = runner.invoke(cli, ["migrate", "--database-url", pg_url])
    assert done.exit_code == 0, done.output
    assert f"migrated {before[0]:,} readings" in done.output
    assert not store.needs_migration()
    assert _checksum(store) == before
    names = set(_partition_names(store))
    assert {f"readings_p{m}" for m in ("202510", "202511", "202512", "202601", "202602")} <= names
    with store.read() as conn:
        constraints = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('readings')"
            )
        }
    assert constraints == {"readings_pkey", "readings_sensor_id_fkey"}

    again = runner.invoke(cli, ["migrate", "--database-url", pg_url])
    assert again.exit_code == 0 and "nothing to do: already partitioned" in again.output
    assert _checksum(store) == before
    # The migrated table takes writes in new months and replays as before.
    store.write_readings(a.id, _series("2024-02-01", "2024-02-02"))
    store.write_readings(a.id, _series("2024-02-01", "2024-02-02"))
    assert store.count_readings(a.id, "2024-02-01", "2024-03-01") == 24
    store.close()


# -- retention ----------------------------------------------------------------------------------
def test_retention_removes_exactly_what_is_older_than_the_cutoff(store, monkeypatch):
    monkeypatch.setattr(maintenance, "CHUNK_ROWS", 700)  # several chunks on SQLite
    written = {
        _sensor(store, "a").id: _series("2025-01-10", "2025-06-20", seed=3),
        _sensor(store, "b").id: _series("2025-03-01", "2025-05-01", freq="30min", seed=4),
    }
    for sid, series in written.items():
        store.write_readings(sid, series)
    cutoff = pd.Timestamp("2025-04-17 13:00", tz="UTC")
    older = sum(int((s.index < cutoff).sum()) for s in written.values())
    partitions_before = _partition_names(store)

    dry = maintenance.retention(store, cutoff, dry_run=True)
    assert dry.rows == older and dry.dry_run
    assert _partition_names(store) == partitions_before
    for sid, series in written.items():
        assert store.count_readings(sid) == len(series)

    done = maintenance.retention(store, cutoff)
    assert done.rows == older
    for sid, series in written.items():
        kept = series[series.index >= cutoff]
        back = store.read_series(sid, "2000-01-01", "2100-01-01")
        pd.testing.assert_series_equal(back, kept, check_names=False, check_freq=False)
    if store.dialect == "postgresql":
        assert (
            done.partitions
            == dry.partitions
            == [
                "readings_p202501",
                "readings_p202502",
                "readings_p202503",
            ]
        )
        assert _partition_names(store) == [p for p in partitions_before if p not in done.partitions]
    else:
        assert done.partitions == []
    assert maintenance.retention(store, cutoff).rows == 0  # nothing left to remove


def test_retention_command_dry_run_removes_nothing(sqlite_url):
    now = pd.Timestamp.now(tz="UTC").floor("h")
    series = _series(now - pd.Timedelta("30D"), now)
    # No reading within the hour the command's own clock may put the cutoff in.
    series = series.drop(now - pd.Timedelta("10D"))
    older = int((series.index < now - pd.Timedelta("10D")).sum())
    with Store.open(sqlite_url) as store:
        store.init()
        sid = _sensor(store).id
        store.write_readings(sid, series)
    runner = CliRunner()
    dry = runner.invoke(
        cli, ["retention", "--older-than", "10d", "--dry-run", "--database-url", sqlite_url]
    )
    assert dry.exit_code == 0, dry.output
    assert f"would remove {older} readings older than 10d" in dry.output
    with Store.open(sqlite_url) as store:
        assert store.count_readings(sid) == len(series)
    done = runner.invoke(cli, ["retention", "--older-than", "10d", "--database-url", sqlite_url])
    assert done.exit_code == 0 and f"removed {older} readings" in done.output
    with Store.open(sqlite_url) as store:
        assert store.count_readings(sid) == len(series) - older


@pytest.mark.postgres
def test_an_import_holds_no_partition_lock_while_it_writes(pg_store, pg_url, tmp_path):
    """The months a file spans are made in a short transaction of their own: while the import's
    long transaction writes, another writer can still create the partition of another month
    (before, it waited on the import's advisory lock until the import committed)."""
    from plantcast.ingest.csv_import import CsvSpec, import_csv

    rows = _series("2031-01-05", "2031-01-08")
    path = tmp_path / "jan.csv"
    rows.rename("value").rename_axis("ts").to_csv(path)
    other = Store.open(pg_url)
    created: list = []

    def progress(stage, done, total):  # "write": inside the import's open transaction
        if stage == "write" and not created:
            with other.write() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '3s'")
                may = pd.DatetimeIndex(["2032-05-02"], tz="UTC")
                created.append(parts.ensure_partitions_for(conn, may))

    try:
        import_csv(pg_store, CsvSpec(path, tz="UTC"), "jan", on_progress=progress)
    finally:
        other.close()
    assert created == [["readings_p203205"]]  # made while the import was writing
    assert pg_store.count_readings(pg_store.get_sensor("jan").id) == len(rows)
    assert {"readings_p203101", "readings_p203205"} <= set(_partition_names(pg_store))
