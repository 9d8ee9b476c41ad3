"""An in-memory cache for the hot paths: TTL, stale-while-revalidate and single-flight loads.

- A fresh entry is answered from memory.
- An expired entry is still answered at once while one background load refreshes it, so a
  TTL expiry never stalls the requests that arrive together (no thundering herd).
- A missing entry is loaded once, however many requests wait for it.
- A TTL of 0 turns caching off: every call loads (useful to measure what the cache saves).
- ``invalidate`` drops entries at once; a load that started before an invalidation is
  not stored, so a slow reader cannot put back what a write just replaced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

logger = logging.getLogger("chatver.memo")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, load: Callable[[K], V], *, ttl: float, max_entries: int = 50_000) -> None:
        self._load = load
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._inflight: dict[tuple[int, int, K], asyncio.Future[V]] = {}
        self._refreshing: set[K] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._lock = threading.Lock()

    def invalidate(self, matches: Callable[[K], bool]) -> None:
        """Drop every entry whose key ``matches``; in-flight loads will not be stored."""
        with self._lock:
            self._generation += 1
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]

    def _store(self, key: K, value: V, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic() + self._ttl)

    async def _load_and_store(self, key: K) -> V:
        generation = self._generation
        value = await run_in_threadpool(self._load, key)
        self._store(key, value, generation)
        return value

    async def _refresh(self, key: K) -> None:
        try:
            await self._load_and_store(key)
        except Exception:  # the stale value keeps serving; the next expiry tries again
            logger.exception("background refresh of %r failed", key)
        finally:
            self._refreshing.discard(key)

    async def get(self, key: K) -> V:
        if self._ttl <= 0:
            return await run_in_threadpool(self._load, key)
        entry = self._entries.get(key)
        if entry is not None:
            value, expires = entry
            if expires <= time.monotonic() and key not in self._refreshing:
                self._refreshing.add(key)
                task = asyncio.get_running_loop().create_task(self._refresh(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return value
        loop = asyncio.get_running_loop()
        # Futures belong to one event loop; a request that arrives after an invalidation must
        # not join a load that started before it, so the generation is part of the key too.
        flight = (id(loop), self._generation, key)
        pending = self._inflight.get(flight)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = loop.create_future()
        self._inflight[flight] = future
        try:
            value = await self._load_and_store(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[flight]
