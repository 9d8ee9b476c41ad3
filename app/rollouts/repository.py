"""Every query on guarded rollouts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from app.dbtypes import utcnow
from app.rollouts.models import Rollout, RolloutStatus


def add(session: Session, rollout: Rollout) -> None:
    session.add(rollout)
    session.flush()


def get(session: Session, rollout_id: str) -> Rollout | None:
    return session.get(Rollout, rollout_id)


def lock(session: Session, rollout_id: str) -> Rollout | None:
    return session.exec(select(Rollout).where(Rollout.id == rollout_id).with_for_update()).first()


def running(session: Session, bundle_id: int) -> Rollout | None:
    return session.exec(
        select(Rollout).where(Rollout.bundle_id == bundle_id, Rollout.status == RolloutStatus.running.value)
    ).first()


def running_by_bundle(session: Session, bundle_ids: list[int]) -> dict[int, str]:
    rows = session.exec(
        select(Rollout.bundle_id, Rollout.id).where(
            col(Rollout.bundle_id).in_(bundle_ids), Rollout.status == RolloutStatus.running.value
        )
    )
    return dict(rows.all())


def running_ids(session: Session) -> list[str]:
    return list(session.exec(select(Rollout.id).where(Rollout.status == RolloutStatus.running.value)))


def list_for_bundle(session: Session, bundle_id: int) -> list[Rollout]:
    return list(
        session.exec(
            select(Rollout).where(Rollout.bundle_id == bundle_id).order_by(col(Rollout.created_at).desc())
        )
    )


def take_lease(session: Session, rollout_id: str, owner: str, seconds: float) -> bool:
    """Claim the right to act on a rollout; only one replica holds it at a time."""
    now = utcnow()
    result = session.execute(
        update(Rollout)
        .where(
            col(Rollout.id) == rollout_id,
            col(Rollout.status) == RolloutStatus.running.value,
            or_(
                col(Rollout.lease_until).is_(None),
                col(Rollout.lease_until) < now,
                col(Rollout.lease_owner) == owner,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stop_running(session: Session, bundle_id: int, reason: str) -> list[Rollout]:
    """Stop the bundle's running rollout (the manual-rollback path)."""
    rollout = running(session, bundle_id)
    if rollout is None:
        return []
    rollout.status = RolloutStatus.stopped.value
    rollout.reason = reason
    rollout.finished_at = utcnow()
    session.add(rollout)
    session.flush()
    return [rollout]
