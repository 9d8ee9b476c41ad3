"""Hour-by-hour traffic of a version, grouped in the database (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from app.db import read_session, write_session
from app.dbtypes import utcnow
from app.events import repository
from app.events.models import ChatEvent
from app.events.service import version_trend
from tests.conftest import Api


def stored(version_id: str, hours_ago: float, *, error: bool = False, latency: float = 100.0) -> ChatEvent:
    """An event ``hours_ago`` full hours before the current hour, a minute or so into that hour
    (never across an hour boundary, whenever the test runs)."""
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    at = hour - timedelta(hours=int(hours_ago)) + timedelta(minutes=1 + 100 * (hours_ago % 1))
    return ChatEvent(
        request_id=f"t-{hours_ago}-{error}-{latency}",
        bundle=version_id.partition("@")[0],
        version_id=version_id,
        source="runtime",
        status="error" if error else "ok",
        latency_ms=latency,
        created_at=min(at, utcnow()),
    )


def test_the_last_24_hours_hour_by_hour(app: FastAPI, api: Api) -> None:
    rows = [
        stored("support-bot@1", 2, latency=100.0),
        stored("support-bot@1", 2.01, latency=300.0),
        stored("support-bot@1", 2.02, error=True, latency=200.0),
        stored("support-bot@1", 0, error=True, latency=50.0),
        stored("support-bot@1", 30),  # older than the window
        stored("support-bot@2", 0),  # another version
    ]
    with write_session(app.state.engine) as session:
        repository.add_events(session, [repository.event_row(r) for r in rows])
        session.commit()
    with read_session(app.state.engine) as session:
        trend = version_trend(session=session, version_id="support-bot@1")
    assert trend.hours == 24 and len(trend.requests) == 24
    assert sum(trend.requests) == 4 and trend.requests[-1] == 1
    two_hours_ago = 21  # index 23 is the current hour
    assert trend.requests[two_hours_ago] == 3
    assert trend.error_rate[two_hours_ago] == 1 / 3
    assert trend.latency_ms[two_hours_ago] == 200.0
    assert (trend.error_rate[-1], trend.latency_ms[-1]) == (1.0, 50.0)
    assert trend.error_rate[0] is None and trend.latency_ms[0] is None
