"""Every query on chat events and outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, distinct, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.dbtypes import utcnow
from app.events.models import ChatEvent, Outcome

EVENT_COLUMNS = [c.name for c in ChatEvent.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]


def event_row(event: ChatEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in EVENT_COLUMNS}


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(ChatEvent), list(rows))


def get_event(session: Session, request_id: str) -> ChatEvent | None:
    return session.exec(select(ChatEvent).where(ChatEvent.request_id == request_id)).first()


def outcome_value(session: Session, request_id: str, name: str) -> float | None:
    """The value stored for (request_id, name), if any."""
    return session.exec(
        select(Outcome.value).where(Outcome.request_id == request_id, Outcome.name == name)
    ).first()


def upsert_outcome(
    session: Session,
    *,
    request_id: str,
    version_id: str,
    experiment_id: str | None,
    subject: str | None,
    name: str,
    value: float,
    comment: str,
) -> None:
    """Insert, or replace the value of the same (request_id, name)."""
    now = utcnow()
    values = {
        "request_id": request_id,
        "version_id": version_id,
        "experiment_id": experiment_id,
        "subject": subject,
        "name": name,
        "value": value,
        "comment": comment,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(Outcome).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["request_id", "name"],
        set_={"value": value, "comment": comment, "updated_at": now},
    )
    session.execute(statement)


def version_event_totals(session: Session, version_id: str, since: datetime | None) -> dict[str, Any]:
    query = sa_select(
        func.count(),
        func.sum(case((col(ChatEvent.status) == "error", 1), else_=0)),
        func.sum(col(ChatEvent.prompt_tokens)),
        func.sum(col(ChatEvent.completion_tokens)),
        func.sum(col(ChatEvent.cost)),
    ).where(col(ChatEvent.version_id) == version_id)
    if since is not None:
        query = query.where(col(ChatEvent.created_at) >= since)
    requests, errors, prompt, completion, cost = session.execute(query).one()
    return {
        "requests": int(requests or 0),
        "errors": int(errors or 0),
        "prompt_tokens": int(prompt or 0),
        "completion_tokens": int(completion or 0),
        "cost": float(cost or 0.0),
    }


def latencies(
    session: Session, version_id: str, since: datetime | None, *, experiment_id: str | None = None
) -> tuple[list[float], list[float]]:
    """(latency_ms values, ttft_ms values) of the version's events."""
    query = select(ChatEvent.latency_ms, ChatEvent.ttft_ms).where(ChatEvent.version_id == version_id)
    if since is not None:
        query = query.where(col(ChatEvent.created_at) >= since)
    if experiment_id is not None:
        query = query.where(ChatEvent.experiment_id == experiment_id)
    latency: list[float] = []
    ttft: list[float] = []
    for total, first in session.exec(query):
        if total is not None:
            latency.append(total)
        if first is not None:
            ttft.append(first)
    return latency, ttft


def outcome_stats(
    session: Session, version_id: str, since: datetime | None, *, experiment_id: str | None = None
) -> dict[str, tuple[int, float, float]]:
    """name → (count, sum, sum of squares) of the version's outcomes."""
    query = select(
        Outcome.name, func.count(), func.sum(Outcome.value), func.sum(Outcome.value * Outcome.value)
    ).where(Outcome.version_id == version_id)
    if since is not None:
        query = query.where(col(Outcome.created_at) >= since)
    if experiment_id is not None:
        query = query.where(Outcome.experiment_id == experiment_id)
    rows = session.exec(query.group_by(Outcome.name))
    return {name: (int(n), float(total), float(squares)) for name, n, total, squares in rows}


def experiment_arm_totals(session: Session, experiment_id: str, version_id: str) -> dict[str, Any]:
    """Exposure and per-request sums (with squares, for variances) of one arm."""
    latency, cost, ttft = col(ChatEvent.latency_ms), col(ChatEvent.cost), col(ChatEvent.ttft_ms)
    query = sa_select(
        func.count(),
        func.count(distinct(col(ChatEvent.subject))),
        func.sum(case((col(ChatEvent.status) == "error", 1), else_=0)),
        func.count(latency),
        func.sum(latency),
        func.sum(latency * latency),
        func.sum(func.coalesce(cost, 0.0)),
        func.sum(func.coalesce(cost, 0.0) * func.coalesce(cost, 0.0)),
        func.count(ttft),
        func.sum(ttft),
        func.sum(ttft * ttft),
    ).where(col(ChatEvent.experiment_id) == experiment_id, col(ChatEvent.version_id) == version_id)
    row = session.execute(query).one()
    requests, subjects, errors, timed, latency_sum, latency_squares, cost_sum, cost_squares = row[:8]
    streamed, ttft_sum, ttft_squares = row[8:]
    return {
        "requests": int(requests or 0),
        "subjects": int(subjects or 0),
        "errors": int(errors or 0),
        "timed": int(timed or 0),
        "latency_sum": float(latency_sum or 0.0),
        "latency_squares": float(latency_squares or 0.0),
        "cost": float(cost_sum or 0.0),
        "cost_squares": float(cost_squares or 0.0),
        "streamed": int(streamed or 0),
        "ttft_sum": float(ttft_sum or 0.0),
        "ttft_squares": float(ttft_squares or 0.0),
    }


def count_events(session: Session, *, experiment_id: str, version_id: str, since: datetime) -> int:
    query = (
        sa_select(func.count())
        .select_from(ChatEvent)
        .where(
            col(ChatEvent.experiment_id) == experiment_id,
            col(ChatEvent.version_id) == version_id,
            col(ChatEvent.created_at) >= since,
        )
    )
    return int(session.execute(query).scalar_one())


def hourly_totals(
    session: Session, version_id: str, since: datetime
) -> dict[int, tuple[int, int, float | None]]:
    """Hour index since ``since`` → (requests, errors, mean latency) of the version's events.

    Grouped in the database (the (version_id, created_at) index bounds the scan); an hour without
    events is absent.
    """
    created = col(ChatEvent.created_at)
    hour: ColumnElement[Any]
    if session.get_bind().dialect.name == "sqlite":
        start = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLite stores UTC times
        hour = cast((func.julianday(created) - func.julianday(start)) * 24, Integer)
    else:
        hour = func.floor(func.extract("epoch", created - since) / 3600)
    query = (
        sa_select(
            hour.label("hour"),
            func.count(),
            func.sum(case((col(ChatEvent.status) == "error", 1), else_=0)),
            func.avg(col(ChatEvent.latency_ms)),
        )
        .where(col(ChatEvent.version_id) == version_id, created >= since)
        .group_by("hour")
    )
    return {
        int(h): (int(n), int(errors or 0), float(latency) if latency is not None else None)
        for h, n, errors, latency in session.execute(query)
    }
