"""plantcast: industrial time series — store, simulate, stream, forecast and watch sensor readings.

The package is layered (see docs/architecture.md):

* ``core`` and ``signals``: configuration, time helpers, domain types and the pure signal model;
* ``store``: the only place that speaks SQL (SQLite or PostgreSQL, one schema);
* ``forecast`` and ``detect``: pure analytics on a UTC-indexed ``pandas.Series``;
* ``ingest``: sources that write readings (backfill, stream, CSV import, MQTT and OPC UA);
* ``services``: the use cases, where stored data meets models;
* ``scale``: the same pure analytics fanned out on Dask, reads and writes on the client;
* ``cli``, ``dashboard``, ``api`` and ``notify``: thin surfaces that parse, call a service and
  show (or deliver).
"""

__version__ = "0.1.0"
