"""The event writer: chat events are queued and stored in batches, off the request path.

``submit`` never blocks and never raises. A background task stores batches; when the
database is slow or down it retries the batch with backoff while new events queue up to
``max_queue``; beyond that they are dropped and counted (chatver_events_dropped). On a
graceful stop the queue is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from app.db import write_session
from app.events import repository
from app.events import subject_repository as subjects
from app.events.models import ChatEvent
from app.events.telemetry import Telemetry

logger = logging.getLogger("chatver.events")
MAX_INFLIGHT = 100_000


class EventWriter:
    def __init__(
        self,
        engine: Engine,
        telemetry: Telemetry,
        *,
        max_queue: int = 50_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
    ) -> None:
        self._engine = engine
        self._telemetry = telemetry
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue: deque[ChatEvent] = deque()
        self._pending: dict[str, ChatEvent] = {}
        self._inflight: dict[str, ChatEvent] = {}
        self._stopped = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._writing = asyncio.Lock()  # one batch at a time, whether from the loop or flush()
        self.dropped = 0

    def expect(self, event: ChatEvent) -> None:
        """Make a call findable by its request id while it is still running (feedback mid-stream)."""
        if len(self._inflight) >= MAX_INFLIGHT:  # a call that never finished must not pin memory
            self._inflight.pop(next(iter(self._inflight)))
        self._inflight[event.request_id] = event

    def submit(self, event: ChatEvent) -> None:
        """Queue an event for storage; counts it in the metrics at once."""
        try:
            self._inflight.pop(event.request_id, None)
            self._telemetry.observe(event)
            if self._stopped or len(self._queue) >= self._max_queue:
                self.dropped += 1
                self._telemetry.events_dropped.inc()
                return
            self._queue.append(event)
            self._pending[event.request_id] = event
            self._telemetry.queue_depth.set(len(self._queue))
            if len(self._queue) >= self._batch_size:
                self._wake.set()
        except Exception:  # never let bookkeeping fail a chat response
            logger.exception("could not queue chat event %s", getattr(event, "request_id", "?"))

    def pending(self, request_id: str) -> ChatEvent | None:
        """An event that is queued but not stored yet, or a call still in progress."""
        return self._pending.get(request_id) or self._inflight.get(request_id)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="chatver-event-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued (up to ``timeout`` seconds), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                logger.error("event writer: %d events not stored at shutdown", len(self._queue))
                self._task.cancel()
        self._stopped = True

    async def flush(self) -> None:
        """Store everything queued now (tests and shutdown)."""
        while self._queue:
            if not await self._write_batch():
                break

    async def _run(self) -> None:
        backoff = self._flush_interval
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._flush_interval)
                continue
            if await self._write_batch():
                backoff = self._flush_interval
            else:
                if self._stopping and backoff >= 5:
                    logger.error(
                        "event writer: database unavailable at shutdown; %d events lost", len(self._queue)
                    )
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _write_batch(self) -> bool:
        async with self._writing:
            return await self._write_next()

    async def _write_next(self) -> bool:
        batch = [self._queue[i] for i in range(min(self._batch_size, len(self._queue)))]
        if not batch:
            return True
        try:
            await run_in_threadpool(self._store, batch)
        except Exception:
            self._telemetry.event_write_failures.inc()
            logger.warning("event writer: storing %d events failed; will retry", len(batch), exc_info=True)
            return False
        for _ in batch:
            event = self._queue.popleft()
            self._pending.pop(event.request_id, None)
        self._telemetry.events_written.inc(len(batch))
        self._telemetry.queue_depth.set(len(self._queue))
        return True

    def _store(self, batch: list[ChatEvent]) -> None:
        rows = [repository.event_row(event) for event in batch]
        try:
            with write_session(self._engine) as session, session.begin():
                repository.add_events(session, rows)
                subjects.add_event_aggregates(session, rows)
        except (OperationalError, InterfaceError):
            raise  # the database is away: keep the batch and retry it
        except DBAPIError:
            # One bad row (a duplicate id, a value the column refuses) would poison the whole
            # batch forever: store the rest one by one and count what cannot be stored.
            for row in rows:
                try:
                    with write_session(self._engine) as session, session.begin():
                        repository.add_events(session, [row])
                        subjects.add_event_aggregates(session, [row])
                except (OperationalError, InterfaceError):
                    raise
                except DBAPIError:
                    self.dropped += 1
                    self._telemetry.events_dropped.inc()
                    logger.error("event writer: event %s refused by the database; dropped", row["request_id"])
