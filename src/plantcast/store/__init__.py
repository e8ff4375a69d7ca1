"""Store: the only layer that speaks SQL — one schema on SQLite (embedded) and PostgreSQL.

:class:`Store` is the facade the other layers use; ``store.transaction()`` yields a
:class:`Transaction` when several calls must commit together. Every read of readings is
bounded by a time window; display reads are downsampled in SQL into time buckets (mean, min,
max, count). Writes are idempotent upserts on (sensor_id, ts); bulk writes use COPY on
PostgreSQL and one ``executemany`` transaction on SQLite.
"""

from plantcast.store.engine import make_engine, normalize_url
from plantcast.store.facade import Store
from plantcast.store.transaction import Transaction

__all__ = ["Store", "Transaction", "make_engine", "normalize_url"]
