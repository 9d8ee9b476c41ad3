"""Heartbeats in, the fleet of one bundle out."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from app.bundles import service as bundles
from app.cache.resolver import ResolvedVersion, serving_plan
from app.dbtypes import rfc3339, utcnow
from app.errors import NotFound, invalid
from app.fleet import repository
from app.fleet.schemas import FleetMember, Heartbeat
from app.lifecycle import service as lifecycle

LIVE = timedelta(minutes=5)  # a runtime not heard from for this long is no longer listed


def record_heartbeat(*, session: Session, heartbeat: Heartbeat, kind: str) -> int:
    """Store what one runtime serves; every bundle must exist (else 422 naming the entry)."""
    now = utcnow()
    rows = []
    seen: set[str] = set()
    for index, served in enumerate(heartbeat.bundles):
        field = f"bundles.{index}"
        if served.bundle in seen:
            raise invalid(
                f"{field}.bundle", f"{served.bundle} is listed twice; a runtime serves one version of it"
            )
        seen.add(served.bundle)
        try:
            bundle = bundles.get_bundle(session=session, name=served.bundle)
        except NotFound:
            raise invalid(f"{field}.bundle", f"no bundle named {served.bundle!r}") from None
        name, _, number = served.version_id.rpartition("@")
        if name != served.bundle:
            raise invalid(f"{field}.version_id", f"{served.version_id} is not a version of {served.bundle}")
        try:
            version = bundles.get_version(session=session, bundle=bundle, selector=int(number))
        except NotFound:
            raise invalid(f"{field}.version_id", f"no version {served.version_id}") from None
        if version.digest != served.digest:
            raise invalid(f"{field}.digest", f"{served.version_id} has digest {version.digest}, not this one")
        rows.append(
            {
                "runtime_id": heartbeat.runtime_id,
                "bundle": served.bundle,
                "kind": kind,
                "version_id": served.version_id,
                "digest": served.digest,
                "stale": served.stale,
                "last_refresh_at": served.last_refresh_at,
                "last_seen_at": now,
            }
        )
    repository.upsert_reports(session, rows)
    return len(rows)


def serving_versions(*, session: Session, bundle_name: str) -> set[str]:
    """What the bundle serves now, read from the database (not a replica's cache, which may lag
    right after a rollback): production and the arms of a running experiment or rollout."""
    plan = serving_plan(session, bundle_name)
    serving = {plan.production.version_id} if isinstance(plan.production, ResolvedVersion) else set()
    if plan.experiment is not None:
        serving |= {version.version_id for version in plan.experiment.versions}
    return serving


def fleet(*, session: Session, bundle_name: str) -> list[FleetMember]:
    """Every runtime heard from in the last five minutes, and whether it serves what the bundle
    serves now; one that does not is behind since its version left production (when known)."""
    bundle = bundles.get_bundle(session=session, name=bundle_name)
    serving = serving_versions(session=session, bundle_name=bundle_name)
    now = utcnow()
    left: dict[str, datetime | None] = {}
    members = []
    for row in repository.seen_since(session, bundle_name, now - LIVE):
        current = row.version_id in serving
        behind = None
        if not current:
            if row.version_id not in left:
                left[row.version_id] = lifecycle.left_production_at(
                    session=session, bundle=bundle, version_id=row.version_id
                )
            since = left[row.version_id]
            behind = round(max(0.0, (now - since).total_seconds()), 1) if since is not None else None
        members.append(
            FleetMember(
                runtime_id=row.runtime_id,
                kind=row.kind,
                version_id=row.version_id,
                digest=row.digest,
                stale=row.stale,
                last_refresh_at=rfc3339(row.last_refresh_at) if row.last_refresh_at else None,
                last_seen_at=rfc3339(row.last_seen_at),
                current=current,
                behind_seconds=behind,
            )
        )
    return members
