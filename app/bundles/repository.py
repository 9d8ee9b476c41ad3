"""Every query on bundles, versions and evaluations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.bundles.models import Bundle, Evaluation, Stage, Version


def add(session: Session, row: Bundle | Version | Evaluation) -> None:
    session.add(row)
    session.flush()


def get_bundle(session: Session, name: str) -> Bundle | None:
    return session.exec(select(Bundle).where(Bundle.name == name)).first()


def get_bundle_by_id(session: Session, bundle_id: int) -> Bundle | None:
    return session.get(Bundle, bundle_id)


def lock_bundle(session: Session, name: str) -> Bundle | None:
    """The bundle row, locked until commit (PostgreSQL); SQLite's BEGIN IMMEDIATE already serializes."""
    return session.exec(select(Bundle).where(Bundle.name == name).with_for_update()).first()


def list_bundles(session: Session) -> list[Bundle]:
    return list(session.exec(select(Bundle).order_by(col(Bundle.name))))


def production_numbers(session: Session, bundle_ids: Sequence[int]) -> dict[int, int]:
    """bundle id → number of its production version, for the bundles that have one."""
    if not bundle_ids:
        return {}
    rows = session.exec(
        select(Version.bundle_id, Version.number).where(
            col(Version.bundle_id).in_(bundle_ids), Version.stage == Stage.production.value
        )
    )
    return dict(rows.all())


def get_version(session: Session, bundle_id: int, number: int) -> Version | None:
    return session.exec(
        select(Version).where(Version.bundle_id == bundle_id, Version.number == number)
    ).first()


def get_version_by_semver(session: Session, bundle_id: int, semver: str) -> Version | None:
    return session.exec(
        select(Version).where(Version.bundle_id == bundle_id, Version.semver == semver)
    ).first()


def get_version_by_digest(session: Session, bundle_id: int, digest: str) -> Version | None:
    return session.exec(
        select(Version).where(Version.bundle_id == bundle_id, Version.digest == digest)
    ).first()


def production_version(session: Session, bundle_id: int) -> Version | None:
    return newest_in_stage(session, bundle_id, Stage.production)


def newest_in_stage(session: Session, bundle_id: int, stage: Stage) -> Version | None:
    return session.exec(
        select(Version)
        .where(Version.bundle_id == bundle_id, Version.stage == stage.value)
        .order_by(col(Version.number).desc())
    ).first()


def list_versions(session: Session, bundle_id: int, stage: Stage | None) -> list[Version]:
    query = select(Version).where(Version.bundle_id == bundle_id)
    if stage is not None:
        query = query.where(Version.stage == stage.value)
    return list(session.exec(query.order_by(col(Version.number).desc())))


def versions_by_numbers(session: Session, bundle_id: int, numbers: Sequence[int]) -> list[Version]:
    return list(
        session.exec(select(Version).where(Version.bundle_id == bundle_id, col(Version.number).in_(numbers)))
    )


def list_evaluations(session: Session, version_pks: Sequence[int]) -> list[Evaluation]:
    if not version_pks:
        return []
    return list(
        session.exec(
            select(Evaluation).where(col(Evaluation.version_pk).in_(version_pks)).order_by(col(Evaluation.id))
        )
    )
