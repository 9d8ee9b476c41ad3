"""Runtimes report what they serve; on-call sees whether a change reached all of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlmodel import Session

from app.auth.deps import RuntimeKey
from app.bundles.schemas import BUNDLE_NAME
from app.db import SessionDep, WriteDep
from app.fleet import service
from app.fleet.schemas import FleetMember, Heartbeat

router = APIRouter(tags=["fleet"])


@router.post("/api/runtimes/heartbeat", status_code=202)
async def heartbeat(body: Heartbeat, uow: WriteDep, _: RuntimeKey) -> dict[str, int]:
    """What one runtime serves now (SDK clients send it on their own)."""

    def work(session: Session) -> int:
        return service.record_heartbeat(session=session, heartbeat=body, kind="sdk")

    return {"bundles": await uow.run(work)}


@router.get("/api/bundles/{name}/fleet")
def bundle_fleet(
    name: Annotated[str, Path(pattern=BUNDLE_NAME)], session: SessionDep, _: RuntimeKey
) -> list[FleetMember]:
    """Every runtime seen in the last five minutes, the version it serves, and how far behind it is."""
    return service.fleet(session=session, bundle_name=name)
