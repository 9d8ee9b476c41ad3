"""Shapes of runtime heartbeats and the fleet view (see API.md, Runtime API)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.bundles.schemas import BUNDLE_NAME
from app.events.schemas import VERSION_ID
from app.schemas import RequestModel

RUNTIME_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"


class ServedBundle(RequestModel):
    bundle: str = Field(pattern=BUNDLE_NAME)
    version_id: str = Field(pattern=VERSION_ID)
    digest: str = Field(min_length=1, max_length=80)
    stale: bool = False
    last_refresh_at: datetime | None = None


class Heartbeat(RequestModel):
    runtime_id: str = Field(pattern=RUNTIME_ID, description="stable per process, e.g. host:pid")
    bundles: list[ServedBundle] = Field(max_length=100)


class FleetMember(BaseModel):
    runtime_id: str
    kind: str
    version_id: str
    digest: str
    stale: bool
    last_refresh_at: str | None
    last_seen_at: str
    current: bool = Field(description="it serves a version the bundle serves now (production or an arm)")
    behind_seconds: float | None = Field(
        description="when not current: seconds since the bundle's serving versions last changed"
    )
