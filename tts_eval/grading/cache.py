"""Caches bounded in bytes, not entries: answers can be megabytes long (a runaway
generation), and a cache of 65,536 such answers would hold gigabytes."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import LRUCache

T = TypeVar("T")

# Every cache of the grading code together stays under a few times this.
CACHE_BYTES = 32 * 1024**2


def footprint(*objects: object) -> int:
    """Bytes the objects occupy (shallow; enough for strings, numbers and small tuples)."""
    return sum(sys.getsizeof(o) for o in objects)


class ByteLRU:
    """A thread-safe least-recently-used map holding at most ``max_bytes`` of keys and
    values (an entry larger than that is not kept)."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        # The value stored is (value, bytes of key and value), so the size counts the key.
        self._cache: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=lambda entry: entry[1])
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            entry = self._cache.get(key)
        return default if entry is None else entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        size = footprint(key, value) + 64  # the entry's tuple and the map's slot
        if size > self._cache.maxsize:
            return
        with self._lock:
            self._cache[key] = (value, size)

    @property
    def bytes(self) -> int:
        """Bytes held now."""
        return int(self._cache.currsize)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def byte_cached(max_bytes: int = CACHE_BYTES) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorator: remember a one-argument function's results in a :class:`ByteLRU` (as
    ``.cache`` on the wrapper)."""

    def decorate(function: Callable[[str], T]) -> Callable[[str], T]:
        missing = object()

        @functools.wraps(function)
        def wrapper(argument: str) -> T:
            cache = wrapper.cache  # type: ignore[attr-defined]
            value = cache.get(argument, missing)
            if value is missing:
                value = function(argument)
                cache.put(argument, value)
            return value

        wrapper.cache = ByteLRU(max_bytes)  # type: ignore[attr-defined]
        return wrapper

    return decorate
