"""A small per-process cache of values read at most `max_age_seconds` ago (lookups on the request path)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class AgeCache(Generic[V]):
    """Values by key, reloaded once older than `max_age_seconds`. A load that raises is not cached."""

    def __init__(self, max_age_seconds: float, clock=time.monotonic, max_entries: int = 10_000):
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V], still_good: Callable[[V], bool] = lambda value: True) -> V:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.max_age_seconds and still_good(entry[1]):
            return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
