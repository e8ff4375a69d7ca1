"""plantcast: industrial time series — store, simulate, stream, forecast and watch sensor readings.

The package is layered (see DESIGN.md):

* ``core`` and ``signals``: configuration, time helpers, domain types and the pure signal model;
* ``store``: the only place that speaks SQL (SQLite or PostgreSQL, one schema);
* ``forecast`` and ``detect``: pure analytics on a UTC-indexed ``pandas.Series``;
* ``ingest``: sources that write readings (backfill, stream, CSV import);
* ``services``: the use cases, where stored data meets models;
* ``cli`` and ``dashboard``: thin surfaces that parse, call a service and show.
"""

__version__ = "0.1.0"
