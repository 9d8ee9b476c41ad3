"""Stage transitions, approvals, rollback and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session

from app.auth.deps import ApproverKey, EditorKey, RuntimeKey
from app.bundles import service as bundles
from app.bundles.models import Stage
from app.bundles.schemas import BUNDLE_NAME, MAX_VERSION_NUMBER
from app.bundles.traffic import TrafficDep
from app.db import SessionDep, WriteDep
from app.dbtypes import rfc3339
from app.lifecycle import service
from app.lifecycle.models import Approval, Transition
from app.schemas import RequestModel

router = APIRouter(prefix="/api/bundles", tags=["lifecycle"])

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
ProductionNumber = Annotated[int | None, Field(ge=1, le=MAX_VERSION_NUMBER)]


class TransitionRequest(RequestModel):
    to: Annotated[Stage, Field(strict=False)]  # JSON strings are the enum values
    reason: str = Field(default="", max_length=4000)
    expected_production: ProductionNumber = None


class ApprovalRequest(RequestModel):
    comment: str = Field(default="", max_length=4000)


class RollbackRequest(RequestModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    to: int | None = Field(default=None, ge=1, le=MAX_VERSION_NUMBER)
    expected_production: ProductionNumber = None


class TransitionPublic(BaseModel):
    id: int
    version_id: str
    from_stage: str | None
    to_stage: str
    kind: str
    actor: str
    reason: str
    at: str


class ApprovalPublic(BaseModel):
    id: int
    version_id: str
    approver: str
    comment: str
    created_at: str


class RollbackPublic(BaseModel):
    from_: str = Field(serialization_alias="from")
    to: str
    transition: TransitionPublic


def transition_public(record: Transition) -> TransitionPublic:
    return TransitionPublic(
        id=record.id or 0,
        version_id=record.version_id,
        from_stage=record.from_stage,
        to_stage=record.to_stage,
        kind=record.kind,
        actor=record.actor,
        reason=record.reason,
        at=rfc3339(record.at),
    )


def approval_public(version_id: str, approval: Approval) -> ApprovalPublic:
    return ApprovalPublic(
        id=approval.id or 0,
        version_id=version_id,
        approver=approval.approver,
        comment=approval.comment,
        created_at=rfc3339(approval.created_at),
    )


def _expected(body: TransitionRequest | RollbackRequest) -> int | service.Unset | None:
    return body.expected_production if "expected_production" in body.model_fields_set else service.UNSET


@router.post("/{name}/versions/{number}/transitions")
async def transition_version(
    name: BundleName,
    number: VersionNumber,
    body: TransitionRequest,
    uow: WriteDep,
    actor: EditorKey,
    traffic: TrafficDep,
) -> TransitionPublic:
    """Move a version between stages; production needs an approver and enough approvals."""

    def work(session: Session) -> TransitionPublic:
        record = service.transition_version(
            session=session,
            bundle_name=name,
            number=number,
            to=body.to,
            reason=body.reason,
            actor=actor,
            traffic=traffic,
            expected_production=_expected(body),
        )
        return transition_public(record)

    return await uow.run(work)


@router.post("/{name}/versions/{number}/approvals", status_code=201)
async def approve_version(
    name: BundleName,
    number: VersionNumber,
    uow: WriteDep,
    actor: ApproverKey,
    body: ApprovalRequest | None = None,
) -> ApprovalPublic:
    comment = body.comment if body else ""

    def work(session: Session) -> ApprovalPublic:
        approval = service.approve_version(
            session=session, bundle_name=name, number=number, comment=comment, actor=actor
        )
        return approval_public(bundles.version_id(name, number), approval)

    return await uow.run(work)


@router.get("/{name}/versions/{number}/approvals")
def list_approvals(
    name: BundleName, number: VersionNumber, session: SessionDep, _: RuntimeKey
) -> list[ApprovalPublic]:
    bundle = bundles.get_bundle(session=session, name=name)
    version = bundles.get_version(session=session, bundle=bundle, selector=number)
    label = bundles.version_id(name, number)
    return [approval_public(label, a) for a in service.list_approvals(session=session, version=version)]


@router.post("/{name}/rollback")
async def rollback(
    name: BundleName, body: RollbackRequest, uow: WriteDep, actor: ApproverKey, traffic: TrafficDep
) -> RollbackPublic:
    """Emergency path: production goes back at once; a reason is required, approvals are not."""

    def work(session: Session) -> RollbackPublic:
        result = service.rollback(
            session=session,
            bundle_name=name,
            to=body.to,
            reason=body.reason,
            actor=actor.name,
            traffic=traffic,
            expected_production=_expected(body),
        )
        return RollbackPublic(
            from_=bundles.version_id(name, result.demoted.number),
            to=bundles.version_id(name, result.restored.number),
            transition=transition_public(result.transition),
        )

    return await uow.run(work)


@router.get("/{name}/history")
def history(
    name: BundleName,
    session: SessionDep,
    _: RuntimeKey,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="page: records older than this id")
    ] = None,
) -> list[TransitionPublic]:
    """Transition records, newest first; a full page says where the next one starts."""
    bundle = bundles.get_bundle(session=session, name=name)
    records = service.history(session=session, bundle=bundle, limit=limit, before_id=before)
    if len(records) == limit and records[-1].id is not None:
        response.headers["x-chatver-next-before"] = str(records[-1].id)
        response.headers["Link"] = (
            f'</api/bundles/{name}/history?limit={limit}&before={records[-1].id}>; rel="next"'
        )
    return [transition_public(r) for r in records]
