"""Scale: the same pure analytics fanned out as Dask tasks, the store staying with the client.

The per-sensor work of a use case splits in three: *plan and read* (the store, on the client),
*compute* (pure functions of pandas Series: ``detection.score_chunk`` for detect,
``forecasting.backtest_data`` and ``forecast_data`` for backtests and forecast refits), and
*write* (the store, on the client, in the same order and the same way as the serial path). Only
the scoring travels: the client reads a batch of sensors' series, ships them to a worker as one
task, and writes the results that come back. A SQLite file is local to the client's machine and a
remote worker may not reach the database at all, so reading on the client is the portable choice.

Tasks carry batches of sensors sized to about ``batch_seconds`` of work (measured as tasks
return), because a task per sensor would cost Dask more in scheduling than the scoring itself.

``cluster.connect`` gives a ``distributed.Client``: a ``LocalCluster`` of processes on this
machine by default, or an existing cluster at ``tcp://HOST:8786`` (``PLANTCAST_DASK_SCHEDULER``).
"""

from plantcast.scale.assets import detect_assets_many
from plantcast.scale.cluster import connect
from plantcast.scale.detect import detect_many
from plantcast.scale.forecast import backtest_many_sensors, forecast_many, refit_many

__all__ = [
    "backtest_many_sensors",
    "connect",
    "detect_assets_many",
    "detect_many",
    "forecast_many",
    "refit_many",
]
