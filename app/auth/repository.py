"""Every query on API keys."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.auth.models import ApiKey


def add(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def get_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def get_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()


def get_key_by_name(session: Session, name: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.name == name)).first()


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))))


def count_keys(session: Session) -> int:
    return session.exec(select(func.count()).select_from(ApiKey)).one()


def lock_active_admins(session: Session) -> list[str]:
    """Ids of the active admin keys, locked so that two revocations cannot remove the last two."""
    query = select(ApiKey.id).where(ApiKey.role == "admin", col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query.with_for_update()))
