"""Feedback, reported events, per-version metrics, compare (config + live metrics) and Prometheus."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from app.auth.deps import RuntimeKey
from app.bundles import comparison
from app.bundles import service as bundles
from app.bundles.schemas import BUNDLE_NAME, MAX_VERSION_NUMBER
from app.db import SessionDep, WriteDep, read_session
from app.errors import FieldError, NotFound, PayloadTooLarge, Unprocessable, invalid, validation_error
from app.events import service
from app.events.models import ChatEvent
from app.events.schemas import (
    MAX_BATCH,
    Comparison,
    EventCreate,
    FeedbackCreate,
    VersionComparison,
    VersionMetrics,
)
from app.events.telemetry import Telemetry
from app.events.writer import EventWriter

router = APIRouter(tags=["events"])

FEEDBACK_WAIT_SECONDS = 2.0  # how long feedback waits for its chat event to be stored
_EVENT = TypeAdapter(EventCreate)


async def locate_event(request: Request, request_id: str) -> ChatEvent | None:
    """The chat event of ``request_id``: queued here, stored, or stored soon by another replica."""
    writer: EventWriter = request.app.state.event_writer
    deadline = asyncio.get_running_loop().time() + FEEDBACK_WAIT_SECONDS
    while True:
        pending = writer.pending(request_id)
        if pending is not None:
            return pending

        def lookup() -> ChatEvent | None:
            with read_session(request.app.state.engine) as session:
                return service.find_event(session=session, request_id=request_id)

        event = await run_in_threadpool(lookup)
        if event is not None or asyncio.get_running_loop().time() >= deadline:
            return event
        await asyncio.sleep(0.2)


@router.post("/api/feedback", status_code=202)
async def submit_feedback(
    body: FeedbackCreate, request: Request, uow: WriteDep, _: RuntimeKey
) -> dict[str, Any]:
    """Store an outcome for a chat request, attributed to the version that served it."""
    event = await locate_event(request, body.request_id)
    if event is None:
        raise NotFound(
            f"no chat request {body.request_id!r}",
            type_="unknown-request",
            errors=[FieldError("request_id", "unknown request id")],
        )
    await uow.run(lambda session: service.store_feedback(session=session, body=body, event=event))
    return {
        "request_id": event.request_id,
        "version_id": event.version_id,
        "name": body.name,
        "status": "stored",
    }


def _parse_events(payload: Any) -> tuple[list[EventCreate], bool]:
    if isinstance(payload, list):
        if not payload:
            raise invalid("body", "send at least one event")
        if len(payload) > MAX_BATCH:
            raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH} events; got {len(payload)}")
        events: list[EventCreate] = []
        for index, item in enumerate(payload):
            try:
                events.append(_EVENT.validate_python(item))
            except ValidationError as exc:
                problem = validation_error(exc)
                raise Unprocessable(
                    f"event {index}: {problem.detail}",
                    errors=[FieldError(f"{index}.{e.field}", e.message) for e in problem.errors],
                ) from None
        return events, True
    if isinstance(payload, dict):
        try:
            return [_EVENT.validate_python(payload)], False
        except ValidationError as exc:
            raise validation_error(exc) from None
    raise invalid("body", "send an event object or an array of events")


@router.post(
    "/api/events",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/EventCreate"},
                            {
                                "type": "array",
                                "maxItems": MAX_BATCH,
                                "items": {"$ref": "#/components/schemas/EventCreate"},
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def report_events(request: Request, uow: WriteDep, _: RuntimeKey) -> Any:
    """Events of runtimes that call providers themselves; one object or an array of up to 1000."""
    try:
        payload = await request.json()
    except ValueError:
        raise invalid("body", "the body must be JSON") from None
    events, batch = _parse_events(payload)
    lookup: service.ExperimentLookup = request.app.state.experiment_lookup
    stored = await uow.run(
        lambda session: service.report_events(session=session, events=events, batch=batch, lookup=lookup)
    )
    telemetry: Telemetry = request.app.state.telemetry
    for event in stored:
        telemetry.observe(event)
    if batch:
        return {"request_ids": [event.request_id for event in stored]}
    return {"request_id": stored[0].request_id}


@router.get("/api/bundles/{name}/versions/{number}/metrics")
def version_metrics(
    name: Annotated[str, Path(pattern=BUNDLE_NAME)],
    number: Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)],
    session: SessionDep,
    _: RuntimeKey,
    since: Annotated[datetime | None, Query(description="RFC 3339 time; only events from then on")] = None,
) -> VersionMetrics:
    """Live metrics of one version, from the events attributed to it."""
    bundle = bundles.get_bundle(session=session, name=name)
    version = bundles.get_version(session=session, bundle=bundle, selector=number)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return service.version_metrics(
        session=session, version_id=bundles.version_id(name, version.number), since=since
    )


@router.get("/api/bundles/{name}/compare")
def compare_versions(
    name: Annotated[str, Path(pattern=BUNDLE_NAME)],
    session: SessionDep,
    _: RuntimeKey,
    versions: Annotated[str | None, Query(max_length=200, description="e.g. 3,4")] = None,
) -> Comparison:
    """Side by side: config, the latest evaluation metrics and the live metrics of each version;
    by default the production version and the newest one."""
    bundle = bundles.get_bundle(session=session, name=name)
    numbers = comparison.parse_version_numbers(versions) if versions is not None else None
    rows = comparison.compared_versions(session=session, bundle=bundle, numbers=numbers)
    evaluations = bundles.evaluations_of(session=session, versions=rows)
    compared = []
    for version in rows:
        base = comparison.compared_version(version, name, evaluations[version.id or 0])
        metrics = service.version_metrics(session=session, version_id=base.version_id, since=None)
        compared.append(VersionComparison(**base.model_dump(), live_metrics=metrics))
    return Comparison(bundle=name, versions=compared)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, _: RuntimeKey) -> Response:
    """Prometheus text format (scrape with a runtime key as the bearer token)."""
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
