"""The event writer never blocks or fails a caller, bounds its queue, and drains on shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from app.db import create_db_engine, read_session
from app.events.models import ChatEvent
from app.events.telemetry import Telemetry
from app.events.writer import EventWriter


def an_event(i: int) -> ChatEvent:
    return ChatEvent(
        request_id=f"chatcmpl-{i:08d}",
        bundle="support-bot",
        version_id="support-bot@1",
        source="gateway",
        status="ok",
        latency_ms=10.0,
    )


def stored(database_url: str) -> int:
    engine = create_db_engine(database_url)
    try:
        with read_session(engine) as session:
            return int(session.execute(select(func.count()).select_from(ChatEvent)).scalar_one())
    finally:
        engine.dispose()


class TestWriter:
    def test_events_are_stored_in_batches_and_drained_on_stop(self, database_url: str) -> None:
        engine = create_db_engine(database_url)
        telemetry = Telemetry()

        async def scenario() -> None:
            writer = EventWriter(engine, telemetry, batch_size=50, flush_interval=10)
            writer.start()
            for i in range(120):
                writer.submit(an_event(i))
            await writer.stop(timeout=10)

        asyncio.run(scenario())
        engine.dispose()
        assert stored(database_url) == 120
        assert telemetry.events_written._value.get() == 120  # type: ignore[attr-defined]

    def test_database_down_bounds_the_queue_counts_overflow_and_never_raises(self, tmp_path: Path) -> None:
        engine = create_db_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
        telemetry = Telemetry()

        async def scenario() -> EventWriter:
            writer = EventWriter(engine, telemetry, max_queue=100, batch_size=10, flush_interval=0.01)
            writer.start()
            for i in range(150):
                writer.submit(an_event(i))  # must not raise or block
            await asyncio.sleep(0.1)
            assert writer.queued == 100
            assert writer.pending("chatcmpl-00000005") is not None
            await writer.stop(timeout=0.2)
            return writer

        writer = asyncio.run(scenario())
        engine.dispose()
        assert writer.dropped == 50
        assert telemetry.events_dropped._value.get() == 50  # type: ignore[attr-defined]
        assert telemetry.event_write_failures._value.get() >= 1  # type: ignore[attr-defined]

    def test_a_recovering_database_gets_every_queued_event(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine = create_db_engine(database_url)
        telemetry = Telemetry()
        failures = {"left": 3}

        async def scenario() -> None:
            writer = EventWriter(engine, telemetry, batch_size=20, flush_interval=0.01)
            real_store = writer._store

            def flaky(batch: list[ChatEvent]) -> None:
                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise ConnectionError("database restarting")
                real_store(batch)

            monkeypatch.setattr(writer, "_store", flaky)
            writer.start()
            for i in range(60):
                writer.submit(an_event(i))
            await writer.stop(timeout=15)

        asyncio.run(scenario())
        engine.dispose()
        assert stored(database_url) == 60


class TestPoisonEvents:
    def test_one_row_the_database_refuses_does_not_block_the_rest(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.events import repository

        real_add = repository.add_events

        def picky(session: Any, rows: Any) -> None:
            if any(row["request_id"] == "chatcmpl-00000003" for row in rows):
                raise DataError("INSERT", {}, Exception("integer out of range"))
            real_add(session, rows)

        monkeypatch.setattr(repository, "add_events", picky)
        engine = create_db_engine(database_url)
        telemetry = Telemetry()

        async def scenario() -> EventWriter:
            writer = EventWriter(engine, telemetry, batch_size=10, flush_interval=0.01)
            writer.start()
            for i in range(8):
                writer.submit(an_event(i))
            await writer.stop(timeout=5)
            return writer

        writer = asyncio.run(scenario())
        engine.dispose()
        assert stored(database_url) == 7
        assert writer.dropped == 1 and writer.queued == 0
