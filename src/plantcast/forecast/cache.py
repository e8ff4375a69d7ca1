"""A bounded, thread-safe LRU of fitted forecasters: a refresh with no new data refits nothing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import pandas as pd

from plantcast.forecast.base import Forecaster
from plantcast.forecast.registry import get_model

# (sensor, model name, frozen parameters, last timestamp, last value, length)
CacheKey = tuple[Hashable, str, Hashable, Any, float | None, int]


def freeze(value: object) -> Hashable:
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
        self._items: OrderedDict[CacheKey, Forecaster] = OrderedDict()
        # Newest key per (sensor, name, params): a fit superseded by newer data is dropped, so
        # a live sensor holds one fit per model and setting, not one per reading it has seen.
        self._newest: dict[tuple[Hashable, ...], CacheKey] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def key(self, sensor: Hashable, name: str, model: Forecaster, series: pd.Series) -> CacheKey:
        if not len(series):
            return (sensor, name, freeze(model.get_params()), None, None, 0)
        value = series.iloc[-1]
        value = None if pd.isna(value) else float(value)  # NaN != NaN would never hit
        return (sensor, name, freeze(model.get_params()), series.index[-1], value, len(series))

    def get_or_fit(
        self, sensor: Hashable, name: str, params: dict[str, Any] | None, series: pd.Series
    ) -> Forecaster:
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
            old = self._newest.get(key[:3])
            if old is not None and old != key and _newer_or_equal(key, old):
                self._items.pop(old, None)
            if old is None or _newer_or_equal(key, old):
                self._newest[key[:3]] = key
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                dropped, _ = self._items.popitem(last=False)
                if self._newest.get(dropped[:3]) == dropped:
                    del self._newest[dropped[:3]]
        return model

    def latest(
        self, sensor: Hashable, name: str, params: dict[str, Any] | None
    ) -> Forecaster | None:
        """The most recent fit for (sensor, model, parameters) whatever its data, or None."""
        probe = get_model(name, **(params or {}))
        prefix = (sensor, name, freeze(probe.get_params()))
        with self._lock:
            key = self._newest.get(prefix)
            return None if key is None else self._items.get(key)

    def peek(
        self, sensor: Hashable, name: str, params: dict[str, Any] | None, series: pd.Series
    ) -> Forecaster | None:
        """The fit for exactly this data if cached (counted as a hit), else None."""
        key = self.key(sensor, name, get_model(name, **(params or {})), series)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._newest.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self)}


def _newer_or_equal(key: CacheKey, other: CacheKey) -> bool:
    """Whether ``key`` describes data at least as recent as ``other`` (same prefix)."""
    if other[3] is None:
        return True
    return key[3] is not None and (key[3], key[5]) >= (other[3], other[5])
