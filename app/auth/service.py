"""API keys: issue, list, revoke, bootstrap, and authenticate with an in-process cache."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from app.auth import repository
from app.auth.models import ApiKey, Role
from app.changes import Change, ChangeFeed
from app.db import announce, read_session
from app.dbtypes import utcnow
from app.errors import Conflict, NotFound
from app.memo import Memo

logger = logging.getLogger("chatver.auth")

KEY_TOPIC = "key"
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    name: str
    role: Role

    def has(self, role: Role) -> bool:
        return self.role >= role


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return "cv_" + secrets.token_urlsafe(32)


def issue_key(*, session: Session, name: str, role: Role, created_by: str) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned once and only its hash is stored."""
    if repository.get_key_by_name(session, name) is not None:
        raise Conflict(f"an API key named {name!r} already exists", type_="key-name-taken")
    secret = new_secret()
    key = ApiKey(
        id="key_" + secrets.token_hex(8),
        name=name,
        role=role.name,
        key_hash=hash_key(secret),
        prefix=secret[:10],
        created_by=created_by,
    )
    repository.add(session, key)
    return key, secret


def list_keys(*, session: Session) -> list[ApiKey]:
    """Every key, newest first, revoked ones included."""
    return repository.list_keys(session)


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    """Revoke at once: the key fails its next request on every replica."""
    key = repository.get_key(session, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if key.revoked_at is None:
        if key.role == Role.admin.name and len(repository.lock_active_admins(session)) <= 1:
            raise Conflict(
                "this is the last active admin key; issue another admin key before revoking it",
                type_="last-admin-key",
            )
        key.revoked_at = utcnow()
        session.add(key)
        announce(session, Change(KEY_TOPIC, key.key_hash))
    return key


def ensure_bootstrap_key(*, session: Session, admin_key: str | None) -> str | None:
    """Seed CHATVER_ADMIN_KEY; with no key at all, generate one. Returns a generated secret."""
    if admin_key:
        digest = hash_key(admin_key)
        if repository.get_key_by_hash(session, digest) is None:
            name = "admin" if repository.get_key_by_name(session, "admin") is None else f"admin-{digest[:8]}"
            repository.add(
                session,
                ApiKey(
                    id="key_" + secrets.token_hex(8),
                    name=name,
                    role=Role.admin.name,
                    key_hash=digest,
                    prefix="(env)",  # no characters of an operator-chosen secret are kept
                    created_by=SYSTEM_ACTOR,
                ),
            )
        return None
    if repository.count_keys(session) > 0:
        return None
    _, secret = issue_key(session=session, name="admin", role=Role.admin, created_by=SYSTEM_ACTOR)
    return secret


class Authenticator:
    """Maps bearer secrets to principals without a database round trip on the hot path.

    Entries are refreshed after ``ttl`` seconds (bounding staleness across replicas without
    Redis) and dropped at once when this replica hears of a key change.
    """

    def __init__(self, engine: Engine, feed: ChangeFeed, ttl: float) -> None:
        self._engine = engine
        self._memo: Memo[str, Principal | None] = Memo(self._load, ttl=ttl, max_entries=10_000)
        feed.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.topic == KEY_TOPIC:
            self._memo.invalidate(lambda _: True)

    def _load(self, digest: str) -> Principal | None:
        with read_session(self._engine) as session:
            key = repository.get_key_by_hash(session, digest)
            if key is None or key.revoked_at is not None:
                return None
            return Principal(key.id, key.name, Role[key.role])

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal of an API key secret, or None when it is unknown or revoked."""
        return await self._memo.get(hash_key(secret))
