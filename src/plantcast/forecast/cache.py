"""A bounded, thread-safe LRU of fitted forecasters: a refresh with no new data refits nothing."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pandas as pd

from plantcast.forecast.registry import get_model


def freeze(value):
    """A hashable, order-independent form of a parameter value (for cache keys)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = [freeze(v) for v in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, set | frozenset) else tuple(items)
        )
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


class ForecastCache:
    """Fitted models keyed by (sensor, model name, all parameters, last reading, length).

    All parameters means the model's full ``get_params()``, defaults included, so training
    window settings (``max_train_points``, ``smooth``, ``interval``) are part of the key. The
    last timestamp, last value and length of the series stand for "the same data": O(1) to
    compute, so a hit costs microseconds even on a million readings. Two threads missing the
    same key at once may both fit; the last one stored wins (the results are equal).
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def key(self, sensor, name: str, model, series: pd.Series) -> tuple:
        if not len(series):
            return (sensor, name, freeze(model.get_params()), None, None, 0)
        value = series.iloc[-1]
        value = None if pd.isna(value) else float(value)  # NaN != NaN would never hit
        return (sensor, name, freeze(model.get_params()), series.index[-1], value, len(series))

    def get_or_fit(self, sensor, name: str, params: dict | None, series: pd.Series):
        """The model fitted on ``series``, from the cache when nothing changed."""
        model = get_model(name, **(params or {}))
        key = self.key(sensor, name, model, series)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        model.fit(series)  # outside the lock: other sensors are served meanwhile
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return model

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self)}
