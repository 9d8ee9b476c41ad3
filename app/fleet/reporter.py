"""A gateway replica reports what it served, like an SDK client does, every ``interval`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from app.cache.resolver import Served
from app.db import write_session
from app.dbtypes import utcnow
from app.fleet import repository

logger = logging.getLogger("chatver.fleet")


class FleetReporter:
    """Remembers the last version served per bundle (a dict write on the hot path, nothing more)
    and upserts it as this replica's heartbeat in the background."""

    def __init__(self, engine: Engine, *, interval: float, runtime_id: str | None = None) -> None:
        self._engine = engine
        self._interval = interval
        self.runtime_id = runtime_id or f"gateway:{socket.gethostname()}:{os.getpid()}"
        self._served: dict[str, tuple[str, str]] = {}
        self._task: asyncio.Task[None] | None = None

    def served(self, served: Served) -> None:
        version = served.version
        self._served[version.bundle] = (version.version_id, version.digest)

    def report_once(self) -> int:
        """Write this replica's heartbeat now; the number of bundles reported."""
        if not self._served:
            return 0
        now = utcnow()
        rows = [
            {
                "runtime_id": self.runtime_id,
                "bundle": bundle,
                "kind": "gateway",
                "version_id": version_id,
                "digest": digest,
                "stale": False,
                "last_refresh_at": now,
                "last_seen_at": now,
            }
            for bundle, (version_id, digest) in list(self._served.items())
        ]
        with write_session(self._engine) as session:
            repository.upsert_reports(session, rows)
            session.commit()
        return len(rows)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await run_in_threadpool(self.report_once)
            except Exception:  # a heartbeat must never take the gateway down
                logger.warning("fleet heartbeat failed", exc_info=True)

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
