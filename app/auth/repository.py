"""Every query on API keys, console sessions and shared server secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.auth.models import ApiKey, ConsoleSession, ServerSecret


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


# --- console sessions ------------------------------------------------------------------------------


def get_secret(session: Session, name: str) -> ServerSecret | None:
    return session.get(ServerSecret, name)


def add_secret(session: Session, secret: ServerSecret) -> None:
    session.add(secret)
    session.flush()


def add_console_session(session: Session, row: ConsoleSession) -> None:
    session.add(row)
    session.flush()


def console_session_with_key(session: Session, token_hash: str) -> tuple[ConsoleSession, ApiKey] | None:
    row = session.exec(
        select(ConsoleSession, ApiKey)
        .join(ApiKey, col(ApiKey.id) == col(ConsoleSession.key_id))
        .where(ConsoleSession.token_hash == token_hash)
    ).first()
    return (row[0], row[1]) if row is not None else None


def delete_console_session(session: Session, token_hash: str) -> None:
    session.execute(delete(ConsoleSession).where(col(ConsoleSession.token_hash) == token_hash))


def delete_expired_console_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
