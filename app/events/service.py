"""Rules of outcomes: feedback attribution, reported events, per-version metrics."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.bundles import repository as bundles_repo
from app.bundles.models import Bundle, Version
from app.bundles.schemas import MAX_VERSION_NUMBER
from app.errors import invalid
from app.events import repository
from app.events.aggregates import mean_ci95, percentile, rounded
from app.events.models import ChatEvent
from app.events.schemas import EventCreate, FeedbackCreate
from app.experiments import repository as experiments_repo


def new_request_id() -> str:
    """The id of one chat request; clients quote it when they send feedback."""
    return "chatcmpl-" + secrets.token_hex(12)


def find_event(*, session: Session, request_id: str) -> ChatEvent | None:
    return repository.get_event(session, request_id)


def store_feedback(*, session: Session, body: FeedbackCreate, event: ChatEvent) -> None:
    """Attach an outcome to the version that served the request (same name again replaces it)."""
    repository.upsert_outcome(
        session,
        request_id=event.request_id,
        version_id=event.version_id,
        experiment_id=event.experiment_id,
        subject=event.subject,
        name=body.name,
        value=float(body.value),
        comment=body.comment,
    )


def _check_reported(session: Session, events: list[EventCreate], batch: bool) -> None:
    """Every reported version exists; every experiment exists and has that version as an arm."""
    bundle_cache: dict[str, Bundle | None] = {}
    for index, event in enumerate(events):
        field = f"{index}." if batch else ""
        name, _, number = event.version_id.rpartition("@")
        if name not in bundle_cache:
            bundle_cache[name] = bundles_repo.get_bundle(session, name)
        bundle = bundle_cache[name]
        version: Version | None = None
        if bundle is not None and bundle.id is not None and int(number) <= MAX_VERSION_NUMBER:
            version = bundles_repo.get_version(session, bundle.id, int(number))
        if version is None:
            raise invalid(f"{field}version_id", f"no version {event.version_id}")
        if event.experiment is not None:
            experiment = experiments_repo.get(session, event.experiment)
            arms = {int(arm["version"]) for arm in experiment.arms} if experiment else set()
            if experiment is None or experiment.bundle_id != (bundle.id if bundle else None):
                raise invalid(f"{field}experiment", f"no experiment {event.experiment} on bundle {name}")
            if int(number) not in arms:
                raise invalid(f"{field}experiment", f"{event.version_id} is not an arm of {event.experiment}")


def report_events(*, session: Session, events: list[EventCreate], batch: bool) -> list[ChatEvent]:
    """Store events that runtimes report after calling providers themselves, with their outcomes."""
    _check_reported(session, events, batch)
    stored: list[ChatEvent] = []
    for event in events:
        row = ChatEvent(
            request_id=new_request_id(),
            bundle=event.version_id.rpartition("@")[0],
            version_id=event.version_id,
            experiment_id=event.experiment,
            subject=event.subject,
            sticky=event.subject is not None,
            source="runtime",
            stream=event.stream,
            status="ok" if event.error is None else "error",
            error=event.error,
            latency_ms=event.latency_ms,
            ttft_ms=event.ttft_ms,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cost=event.cost,
        )
        stored.append(row)
    repository.add_events(session, [repository.event_row(row) for row in stored])
    for row, event in zip(stored, events, strict=True):
        for name, value in event.outcomes.items():
            repository.upsert_outcome(
                session,
                request_id=row.request_id,
                version_id=row.version_id,
                experiment_id=row.experiment_id,
                subject=row.subject,
                name=name,
                value=float(value),
                comment="",
            )
    return stored


def version_metrics(*, session: Session, version_id: str, since: datetime | None) -> dict[str, Any]:
    """Requests, errors, latency and TTFT percentiles, tokens, cost and outcomes of one version."""
    totals = repository.version_event_totals(session, version_id, since)
    latency, ttft = repository.latencies(session, version_id, since)
    requests = totals["requests"]
    outcomes = {}
    for name, (n, total, squares) in sorted(repository.outcome_stats(session, version_id, since).items()):
        mean, _ = mean_ci95(n, total, squares)
        outcomes[name] = {"count": n, "mean": rounded(mean, 6)}
    return {
        "version_id": version_id,
        "requests": requests,
        "errors": totals["errors"],
        "error_rate": rounded(totals["errors"] / requests, 6) if requests else None,
        "latency_ms": {f"p{q}": rounded(percentile(latency, q), 1) for q in (50, 95, 99)},
        "ttft_ms": {f"p{q}": rounded(percentile(ttft, q), 1) for q in (50, 95)},
        "tokens": {"prompt": totals["prompt_tokens"], "completion": totals["completion_tokens"]},
        "cost": {
            "total": rounded(totals["cost"], 8),
            "per_request": rounded(totals["cost"] / requests, 8) if requests else None,
        },
        "outcomes": outcomes,
    }
