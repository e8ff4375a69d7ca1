"""A bounded hand-off from a network thread to a writer, cheap per item (a deque, two events).

``queue.Queue`` takes locks on every put and get; at tens of thousands of messages a second
that is a measurable share of a core. Here a put is a deque append plus, only when the writer
sleeps, one event set; the writer takes whole batches.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, bound: int) -> None:
        self._items: deque[T] = deque()
        self._bound = bound
        self._ready = threading.Event()  # set when items may be waiting
        self._room = threading.Event()  # set when there is room below the bound
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Append; blocks the producer while ``bound`` items wait (backpressure)."""
        items = self._items
        while len(items) >= self._bound:
            self._room.clear()
            if len(items) >= self._bound:
                self._room.wait(0.1)
        items.append(item)
        if not self._ready.is_set():
            self._ready.set()

    def _wait(self, timeout: float) -> bool:
        if self._items:
            return True
        self._ready.clear()
        if self._items:  # appended between the check and the clear
            return True
        return self._ready.wait(timeout)

    def take(self, size: int, *, first_wait: float, window: float, idle: float) -> list[T]:
        """Up to ``size`` items: waits ``first_wait`` for the first, then at most ``window``
        seconds in all, and returns early when nothing more arrived for ``idle`` seconds."""
        if not self._wait(first_wait):
            return []
        batch: list[T] = []
        pop = self._items.popleft
        deadline = time.monotonic() + window
        while len(batch) < size:
            try:
                batch.append(pop())
                continue
            except IndexError:
                pass
            if not self._room.is_set():
                self._room.set()
            left = deadline - time.monotonic()
            if left <= 0 or not self._wait(min(left, idle)):
                break
        if not self._room.is_set():
            self._room.set()
        return batch
