"""Every query on approvals and the transition history."""

from __future__ import annotations

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
