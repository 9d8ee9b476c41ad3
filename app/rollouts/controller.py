"""The background loop that moves guarded rollouts forward, in every replica, acting once.

Each pass lists running rollouts, takes a short lease on one before acting on it (so two
replicas never advance or roll back the same rollout twice), and evaluates it in one write
transaction. State lives in the database, so a restart simply picks up where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.changes import ChangeFeed
from app.db import read_session, run_in_transaction
from app.rollouts import repository
from app.rollouts.service import evaluate_rollout

logger = logging.getLogger("chatver.rollouts")
LEASE_SECONDS = 30.0


class RolloutController:
    def __init__(self, engine: Engine, feed: ChangeFeed, *, interval: float) -> None:
        self._engine = engine
        self._feed = feed
        self._interval = interval
        self.owner = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None

    def check_once(self) -> dict[str, str]:
        """Evaluate every running rollout this replica can lease; rollout id → outcome."""
        with read_session(self._engine) as session:
            rollout_ids = repository.running_ids(session)
        outcomes: dict[str, str] = {}
        for rollout_id in rollout_ids:
            outcomes[rollout_id] = self._check(rollout_id)
            if outcomes[rollout_id] not in {"waiting", "leased-elsewhere"}:
                logger.info("rollout %s: %s", rollout_id, outcomes[rollout_id])
        return outcomes

    def _check(self, rollout_id: str) -> str:
        def lease(session: Session) -> bool:
            return repository.take_lease(session, rollout_id, self.owner, LEASE_SECONDS)

        def evaluate(session: Session) -> str:
            return evaluate_rollout(session=session, rollout_id=rollout_id)

        if not run_in_transaction(self._engine, None, lease):
            return "leased-elsewhere"
        try:
            return run_in_transaction(self._engine, self._feed, evaluate)
        except Exception:  # one broken rollout must not stop the others
            logger.exception("evaluating rollout %s failed", rollout_id)
            return "failed"

    async def _run(self) -> None:
        while True:
            try:
                await run_in_threadpool(self.check_once)
            except Exception:
                logger.exception("rollout controller pass failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="chatver-rollouts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
