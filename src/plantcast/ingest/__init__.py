"""Ingest: the sources that write readings — bulk backfill, the accelerated streamer, CSV import.

Sources depend on ``core``, ``signals`` and ``store``; they know nothing of models or surfaces.
Every write is an idempotent upsert, so a replayed batch never duplicates a reading.
"""
