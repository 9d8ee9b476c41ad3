"""The change feed: write paths announce what changed; caches subscribe.

Write services never import the caches. They call ``db.announce`` and, once the
transaction commits, every local subscriber (and, with Redis, every replica) hears it.
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
    """Local publish/subscribe; a Redis relay can publish into it from other replicas."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._relays: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def add_relay(self, relay: Subscriber) -> None:
        """A relay forwards local changes to other replicas (e.g. Redis pub/sub)."""
        with self._lock:
            self._relays.append(relay)

    def publish(self, change: Change, *, local_only: bool = False) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(change)
            except Exception:  # a broken cache must not fail the write that already committed
                logger.exception("change subscriber failed for %s", change)
        if local_only:
            return
        for relay in list(self._relays):
            try:
                relay(change)
            except Exception:
                logger.exception("change relay failed for %s", change)
