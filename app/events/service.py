"""Rules of outcomes: feedback attribution, reported events, per-version metrics."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from app.bundles import repository as bundles_repo
from app.bundles.models import Bundle, Version
from app.bundles.schemas import MAX_VERSION_NUMBER
from app.dbtypes import utcnow
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
    assign: Callable[[str, int], str]  # (subject, step) → the arm it is assigned
    steps: int = 0  # a guarded rollout's number of steps (0 for an experiment)
    current_step: int = 0


ExperimentLookup = Callable[[Session, str], ExperimentArms | None]


def _check_reported(
    session: Session, events: list[EventCreate], batch: bool, lookup: ExperimentLookup
) -> tuple[dict[str, ExperimentArms], list[int]]:
    """Every reported version exists; every experiment or rollout exists and has that version as an
    arm; a rollout's step is one it has compared arms at. Returns the scopes and each event's step."""
    bundle_cache: dict[str, Bundle | None] = {}
    experiments: dict[str, ExperimentArms | None] = {}
    steps: list[int] = []
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
        steps.append(0)
        if event.experiment is not None and event.rollout is not None:
            raise invalid(f"{field}rollout", "an event comes from an experiment or a rollout, not both")
        if event.step is not None and event.rollout is None:
            raise invalid(f"{field}step", "a step belongs to a rollout; set rollout too")
        scope = event.experiment or event.rollout
        if scope is None:
            continue
        kind = "experiment" if event.experiment is not None else "rollout"
        if scope not in experiments:
            experiments[scope] = lookup(session, scope)
        experiment = experiments[scope]
        if (
            experiment is None
            or experiment.bundle_id != (bundle.id if bundle else None)
            or (experiment.steps > 0) != (kind == "rollout")
        ):
            raise invalid(f"{field}{kind}", f"no {kind} {scope} on bundle {name}")
        if int(number) not in experiment.versions:
            raise invalid(f"{field}{kind}", f"{event.version_id} is not an arm of {scope}")
        if kind == "rollout":
            step = experiment.current_step if event.step is None else event.step
            if step > experiment.current_step or step >= experiment.steps - 1:
                last = min(experiment.current_step, experiment.steps - 2)
                raise invalid(f"{field}step", f"{scope} compares arms at steps 0 to {last}")
            steps[-1] = step
    return {key: value for key, value in experiments.items() if value is not None}, steps


def report_events(
    *, session: Session, events: list[EventCreate], batch: bool, lookup: ExperimentLookup
) -> list[ChatEvent]:
    """Store events that runtimes report after calling providers themselves, with their outcomes.

    The arm a subject was assigned is recomputed from the experiment's hash, so a runtime that
    serves the wrong arm shows up in the results' SRM checks.
    """
    experiments, steps = _check_reported(session, events, batch, lookup)
    stored: list[ChatEvent] = []
    for event, step in zip(events, steps, strict=True):
        arm: str | None = None
        scope = event.experiment or event.rollout
        if scope is not None:
            experiment = experiments[scope]
            number = int(event.version_id.rpartition("@")[2])
            arm = (
                experiment.assign(event.subject, step)
                if event.subject is not None
                else experiment.arm_of_version[number]  # assigned at random by the runtime
            )
        row = ChatEvent(
            request_id=new_request_id(),
            bundle=event.version_id.rpartition("@")[0],
            version_id=event.version_id,
            experiment_id=scope,
            step=step if event.rollout is not None else None,
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
        unit = _unit_scope(row)
        for name, value in event.outcomes.items():
            if unit is not None:
                subjects.add_outcome(session, unit, name, 1, float(value))
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


@dataclass(frozen=True)
class VersionTrend:
    """A version's traffic hour by hour, oldest first (None: no requests that hour)."""

    hours: int
    requests: list[int]
    error_rate: list[float | None]
    latency_ms: list[float | None]


def version_trend(*, session: Session, version_id: str, hours: int = 24) -> VersionTrend:
    """The last ``hours`` full and current hours of one version's events, aggregated in SQL."""
    now = utcnow()
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    totals = repository.hourly_totals(session, version_id, since)
    requests = [totals.get(h, (0, 0, None))[0] for h in range(hours)]
    errors = [totals.get(h, (0, 0, None))[1] for h in range(hours)]
    return VersionTrend(
        hours=hours,
        requests=requests,
        error_rate=[e / n if n else None for e, n in zip(errors, requests, strict=True)],
        latency_ms=[totals.get(h, (0, 0, None))[2] for h in range(hours)],
    )
