"""The change feed: write paths announce what changed; caches subscribe.

Write services never import the caches. They call ``db.announce`` and, once the
transaction commits, every local subscriber hears it (other replicas refresh within the cache TTL).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("chatver.changes")


@dataclass(frozen=True)
class Change:
    """Something that may change what a cache holds: ``topic`` is e.g. "bundle", "key"."""

    topic: str
    key: str


Subscriber = Callable[[Change], None]


class ChangeFeed:
    """Local publish/subscribe for the caches of this process."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def publish(self, change: Change) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(change)
            except Exception:  # a broken cache must not fail the write that already committed
                logger.exception("change subscriber failed for %s", change)
