"""Rules of outcomes: feedback attribution, reported events, per-version metrics."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.bundles import repository as bundles_repo
from app.bundles.models import Bundle, Version
from app.bundles.schemas import MAX_VERSION_NUMBER
from app.errors import invalid
from app.events import repository
from app.events import subject_repository as subjects
from app.events.aggregates import mean_ci95, percentile, rounded
from app.events.models import NO_EXPERIMENT, ChatEvent
from app.events.schemas import (
    CostTotals,
    EventCreate,
    FeedbackCreate,
    LatencyPercentiles,
    OutcomeSummary,
    TokenTotals,
    TtftPercentiles,
    VersionMetrics,
)


def new_request_id() -> str:
    """The id of one chat request; clients quote it when they send feedback."""
    return "chatcmpl-" + secrets.token_hex(12)


def find_event(*, session: Session, request_id: str) -> ChatEvent | None:
    return repository.get_event(session, request_id)


def _unit_scope(event: ChatEvent) -> tuple[str, int, str, str] | None:
    """Where an event's outcomes are summed per subject: (experiment, step, version, unit)."""
    if event.experiment_id is None and event.subject is None:
        return None
    return (
        event.experiment_id or NO_EXPERIMENT,
        (event.step or 0) if event.experiment_id is not None else 0,
        event.version_id,
        subjects.unit_key(event.subject, event.request_id),
    )


def store_feedback(*, session: Session, body: FeedbackCreate, event: ChatEvent) -> None:
    """Attach an outcome to the version and subject that were served (same name again replaces it)."""
    value = float(body.value)
    scope = _unit_scope(event)
    if scope is not None:
        # Lock the subject's sum first: a concurrent replacement of the same value then sees ours.
        subjects.lock_outcome(session, scope, body.name)
    previous = repository.outcome_value(session, event.request_id, body.name)
    repository.upsert_outcome(
        session,
        request_id=event.request_id,
        version_id=event.version_id,
        experiment_id=event.experiment_id,
        subject=event.subject,
        name=body.name,
        value=value,
        comment=body.comment,
    )
    if scope is not None:
        subjects.add_outcome(
            session, scope, body.name, 0 if previous is not None else 1, value - (previous or 0.0)
        )


@dataclass(frozen=True)
class ExperimentArms:
    """What reported events are checked against: the experiment's bundle, arm versions and assignment."""

    bundle_id: int
    versions: frozenset[int]
    arm_of_version: dict[int, str]
    assign: Callable[[str], str]  # subject → the arm it is assigned


ExperimentLookup = Callable[[Session, str], ExperimentArms | None]


def _check_reported(
    session: Session, events: list[EventCreate], batch: bool, lookup: ExperimentLookup
) -> dict[str, ExperimentArms]:
    """Every reported version exists; every experiment exists and has that version as an arm."""
    bundle_cache: dict[str, Bundle | None] = {}
    experiments: dict[str, ExperimentArms | None] = {}
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
            if event.experiment not in experiments:
                experiments[event.experiment] = lookup(session, event.experiment)
            experiment = experiments[event.experiment]
            if experiment is None or experiment.bundle_id != (bundle.id if bundle else None):
                raise invalid(f"{field}experiment", f"no experiment {event.experiment} on bundle {name}")
            if int(number) not in experiment.versions:
                raise invalid(f"{field}experiment", f"{event.version_id} is not an arm of {event.experiment}")
    return {key: value for key, value in experiments.items() if value is not None}


def report_events(
    *, session: Session, events: list[EventCreate], batch: bool, lookup: ExperimentLookup
) -> list[ChatEvent]:
    """Store events that runtimes report after calling providers themselves, with their outcomes.

    The arm a subject was assigned is recomputed from the experiment's hash, so a runtime that
    serves the wrong arm shows up in the results' SRM checks.
    """
    experiments = _check_reported(session, events, batch, lookup)
    stored: list[ChatEvent] = []
    for event in events:
        arm: str | None = None
        if event.experiment is not None:
            experiment = experiments[event.experiment]
            number = int(event.version_id.rpartition("@")[2])
            arm = (
                experiment.assign(event.subject)
                if event.subject is not None
                else experiment.arm_of_version[number]  # assigned at random by the runtime
            )
        row = ChatEvent(
            request_id=new_request_id(),
            bundle=event.version_id.rpartition("@")[0],
            version_id=event.version_id,
            experiment_id=event.experiment,
            arm=arm,
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
    rows = [repository.event_row(row) for row in stored]
    repository.add_events(session, rows)
    subjects.add_event_aggregates(session, rows)
    for row, event in zip(stored, events, strict=True):
        scope = _unit_scope(row)
        for name, value in event.outcomes.items():
            if scope is not None:
                subjects.add_outcome(session, scope, name, 1, float(value))
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


def version_metrics(*, session: Session, version_id: str, since: datetime | None) -> VersionMetrics:
    """Requests, errors, latency and TTFT percentiles, tokens, cost and outcomes of one version."""
    totals = repository.version_event_totals(session, version_id, since)
    latency, ttft = repository.latencies(session, version_id, since)
    requests = totals["requests"]
    outcomes = {}
    for name, (n, total, squares) in sorted(repository.outcome_stats(session, version_id, since).items()):
        mean, _ = mean_ci95(n, total, squares)
        outcomes[name] = OutcomeSummary(count=n, mean=rounded(mean, 6))
    return VersionMetrics(
        version_id=version_id,
        requests=requests,
        errors=totals["errors"],
        error_rate=rounded(totals["errors"] / requests, 6) if requests else None,
        latency_ms=LatencyPercentiles(**{f"p{q}": rounded(percentile(latency, q), 1) for q in (50, 95, 99)}),
        ttft_ms=TtftPercentiles(**{f"p{q}": rounded(percentile(ttft, q), 1) for q in (50, 95)}),
        tokens=TokenTotals(prompt=totals["prompt_tokens"], completion=totals["completion_tokens"]),
        cost=CostTotals(
            total=rounded(totals["cost"], 8) or 0.0,
            per_request=rounded(totals["cost"] / requests, 8) if requests else None,
        ),
        outcomes=outcomes,
        since=since.isoformat().replace("+00:00", "Z") if since is not None else None,
    )
