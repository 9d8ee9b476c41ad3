"""Guarded rollouts: start one, follow it, stop it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlmodel import Session

from app.auth.deps import ApproverKey, EditorKey, RuntimeKey
from app.bundles import service as bundles
from app.bundles.schemas import BUNDLE_NAME
from app.db import SessionDep, WriteDep
from app.rollouts import service
from app.rollouts.schemas import RolloutCreate, RolloutPublic, RolloutStop

router = APIRouter(tags=["rollouts"])

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME)]
RolloutId = Annotated[str, Path(pattern=r"^ro_[0-9a-f]{16}$", description="e.g. ro_1a2b3c4d5e6f7a8b")]


@router.post("/api/bundles/{name}/rollouts", status_code=201)
async def create_rollout(
    name: BundleName, body: RolloutCreate, uow: WriteDep, actor: ApproverKey
) -> RolloutPublic:
    """Ramp an approved version through traffic steps; promoted at 100%, rolled back on a regression."""

    def work(session: Session) -> RolloutPublic:
        rollout = service.create_rollout(session=session, bundle_name=name, body=body, actor=actor)
        return service.rollout_public(session, rollout)

    return await uow.run(work)


@router.get("/api/bundles/{name}/rollouts")
def list_rollouts(name: BundleName, session: SessionDep, _: RuntimeKey) -> list[RolloutPublic]:
    """Every rollout of the bundle, newest first."""
    bundle = bundles.get_bundle(session=session, name=name)
    return [service.rollout_public(session, r) for r in service.list_rollouts(session=session, bundle=bundle)]


@router.get("/api/rollouts/{rollout_id}")
def get_rollout(rollout_id: RolloutId, session: SessionDep, _: RuntimeKey) -> RolloutPublic:
    """Where the rollout stands: step, traffic share, what it waits for and the guardrail evidence."""
    return service.rollout_public(session, service.get_rollout(session=session, rollout_id=rollout_id))


@router.post("/api/rollouts/{rollout_id}/stop")
async def stop_rollout(
    rollout_id: RolloutId, body: RolloutStop, uow: WriteDep, actor: EditorKey
) -> RolloutPublic:
    """Stop a running rollout: all traffic returns to production at once."""

    def work(session: Session) -> RolloutPublic:
        rollout = service.stop_rollout(session=session, rollout_id=rollout_id, body=body, actor=actor)
        return service.rollout_public(session, rollout)

    return await uow.run(work)
