"""A byte-bounded LRU of decoded blocks, shared by one Store's reader threads.

Decoding dominates a warm query (a day of 23 series is ~550 blocks: ~50-60 ms of zstd and
numpy), while the blocks of finished hours never change except by growing (a late backlog
merges in, which changes the reading count in the key). Operators look at the same days
again and again, so a store keeps what it decoded, like a database's buffer pool holds pages.
Cached arrays are read-only; readers copy before handing out (concatenation does).
A new Store starts empty, which is what a cold measurement needs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

DEFAULT_BYTES = 256 * 2**20


def size_of(value: Any) -> int:
    """Bytes the cache counts for `value`: its arrays' bytes, 64 for anything else."""
    if hasattr(value, "cache_bytes"):
        return int(value.cache_bytes())
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, tuple | list):
        return sum(size_of(v) for v in value) + 64
    return 64


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, tuple):
        for item in value:
            _freeze(item)
    return value


class DecodedCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def holds(self, key: Hashable) -> bool:
        """Whether `key` is cached now (another thread may evict it right after)."""
        with self._lock:
            return key in self._items

    def peek_many(self, keys: Sequence[Hashable]) -> list[Any]:
        """The cached values (None where absent) under one lock: a warm day is ~550 blocks."""
        out: list[Any] = []
        with self._lock:
            for key in keys:
                found = self._items.get(key)
                if found is None:
                    out.append(None)
                    continue
                self._items.move_to_end(key)
                self.hits += 1
                out.append(found[0])
        return out

    def get(self, key: Hashable, decode: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        value = _freeze(decode())  # outside the lock: threads decode different blocks at once
        size = size_of(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._bytes -= dropped
        return value

    def put_many(self, entries: Sequence[tuple[Hashable, Any, int]]) -> None:
        """Keep (key, value, size) entries whose values the caller made read-only and sized
        as `size_of` would, under one lock: a cold day puts ~550 decoded blocks, and walking
        each one to freeze and size it, a lock each, cost ~3 ms of a cold query."""
        with self._lock:
            for key, value, size in entries:
                if size <= self.max_bytes and key not in self._items:
                    self._items[key] = (value, size)
                    self._bytes += size
                    self.misses += 1
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
