"""Every query on approvals and the transition history."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.bundles.models import Stage
from app.lifecycle.models import Approval, Transition


def add(session: Session, row: Approval | Transition) -> None:
    session.add(row)
    session.flush()


def history(
    session: Session, bundle_id: int, *, limit: int, before_id: int | None = None
) -> list[Transition]:
    query = select(Transition).where(Transition.bundle_id == bundle_id)
    if before_id is not None:
        query = query.where(col(Transition.id) < before_id)
    return list(session.exec(query.order_by(col(Transition.id).desc()).limit(limit)))


def production_entries(session: Session, bundle_id: int) -> list[Transition]:
    """Every record that put a version into production, oldest first."""
    return list(
        session.exec(
            select(Transition)
            .where(Transition.bundle_id == bundle_id, Transition.to_stage == Stage.production.value)
            .order_by(col(Transition.id))
        )
    )


def approvals(session: Session, version_pk: int) -> list[Approval]:
    return list(
        session.exec(select(Approval).where(Approval.version_pk == version_pk).order_by(col(Approval.id)))
    )


def count_approvals_excluding(session: Session, version_pk: int, key_id: str) -> int:
    return session.exec(
        select(func.count())
        .select_from(Approval)
        .where(Approval.version_pk == version_pk, Approval.key_id != key_id)
    ).one()


def approval_by(session: Session, version_pk: int, key_id: str) -> Approval | None:
    return session.exec(
        select(Approval).where(Approval.version_pk == version_pk, Approval.key_id == key_id)
    ).first()


def latest_transitions(session: Session, bundle_ids: Sequence[int]) -> dict[int, Transition]:
    """The newest transition record of each bundle that has one."""
    newest = (
        select(func.max(Transition.id))
        .where(col(Transition.bundle_id).in_(list(bundle_ids)))
        .group_by(col(Transition.bundle_id))
    )
    rows = session.exec(select(Transition).where(col(Transition.id).in_(newest)))
    return {row.bundle_id: row for row in rows}


def approval_counts(session: Session, version_pks: Sequence[int]) -> dict[int, int]:
    """Approvals per version (authors cannot approve their own, so every row counts)."""
    rows = session.exec(
        select(Approval.version_pk, func.count())
        .where(col(Approval.version_pk).in_(list(version_pks)))
        .group_by(col(Approval.version_pk))
    )
    return dict(rows.all())


def left_production_at(session: Session, bundle_id: int, version_id: str) -> Transition | None:
    """The newest record that took this version out of production."""
    return session.exec(
        select(Transition)
        .where(
            Transition.bundle_id == bundle_id,
            Transition.version_id == version_id,
            Transition.from_stage == Stage.production.value,
        )
        .order_by(col(Transition.id).desc())
        .limit(1)
    ).first()
