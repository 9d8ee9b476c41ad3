"""Console sessions: an API key, given once at sign-in, becomes a signed, expiring cookie.

The cookie carries a random token signed with a secret every replica shares (itsdangerous, as
Flask and Starlette sign theirs); the database keeps only the token's SHA-256, the key it stands
for, its CSRF token and its expiry. Every request checks all of it, so a session ends at its
expiry, at sign-out (the row is deleted) and at the next request after its key is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth import repository
from app.auth.models import ApiKey, ConsoleSession, Role, ServerSecret
from app.auth.service import Principal, hash_key
from app.dbtypes import utcnow

COOKIE_SECRET_NAME = "console-cookie"  # noqa: S105 (the name of the row, not a secret)
SALT = "chatver.console.session"


@dataclass(frozen=True)
class ConsoleUser:
    """Who is signed in to the console, and the CSRF token their forms must carry."""

    principal: Principal
    csrf_token: str
    token_hash: str
    expires_at: datetime


class SessionEnded(Exception):
    """The cookie no longer signs anyone in: ``code`` is one of ENDED (the sign-in page explains it)."""

    def __init__(self, code: str) -> None:
        super().__init__(ENDED[code])
        self.code = code


ENDED = {
    "required": "Sign in with an API key to continue.",
    "expired": "Your session expired; sign in again.",
    "signed-out": "You were signed out; sign in again.",
    "revoked": "The API key of that session was revoked; sign in with another key.",
    "invalid": "That session is not valid here; sign in again.",
}


def shared_secret(*, session: Session, configured: str | None) -> str:
    """The cookie-signing secret: CHATVER_SESSION_SECRET, else one made at first start and kept in
    the database so that every worker and replica signs and checks cookies alike."""
    if configured:
        return configured
    row = repository.get_secret(session, COOKIE_SECRET_NAME)
    if row is not None:
        return row.value
    value = secrets.token_urlsafe(48)
    try:
        with session.begin_nested():
            repository.add_secret(session, ServerSecret(name=COOKIE_SECRET_NAME, value=value))
    except IntegrityError:  # another replica made it at the same moment: use theirs
        row = repository.get_secret(session, COOKIE_SECRET_NAME)
        assert row is not None
        return row.value
    return value


class ConsoleSessions:
    """Signs, checks and ends console sessions. Stateless itself: the state is in the database."""

    def __init__(self, secret: str, *, lifetime: timedelta) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt=SALT)
        self.lifetime = lifetime

    def sign_in(self, *, session: Session, api_key: str) -> tuple[str, ConsoleUser] | None:
        """A new session for a valid, unrevoked key: (cookie value, user); None for a bad key."""
        if not api_key or len(api_key) > 256:
            return None
        key = repository.get_key_by_hash(session, hash_key(api_key))
        if key is None or key.revoked_at is not None:
            return None
        now = utcnow()
        repository.delete_expired_console_sessions(session, now)
        token = secrets.token_urlsafe(32)
        row = ConsoleSession(
            token_hash=_digest(token),
            key_id=key.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.lifetime,
        )
        repository.add_console_session(session, row)
        return self._signer.dumps(token), _user(key, row)

    def user(self, *, session: Session, cookie: str) -> ConsoleUser:
        """The signed-in user of a cookie; SessionEnded (with the reason) when it signs nobody in."""
        try:
            token = self._signer.loads(cookie, max_age=int(self.lifetime.total_seconds()))
        except SignatureExpired as exc:
            raise SessionEnded("expired") from exc
        except BadSignature as exc:
            raise SessionEnded("invalid") from exc
        if not isinstance(token, str):
            raise SessionEnded("invalid")
        found = repository.console_session_with_key(session, _digest(token))
        if found is None:
            raise SessionEnded("signed-out")
        row, key = found
        if row.expires_at <= utcnow():
            raise SessionEnded("expired")
        if key.revoked_at is not None:
            raise SessionEnded("revoked")
        return _user(key, row)

    def sign_out(self, *, session: Session, user: ConsoleUser) -> None:
        repository.delete_console_session(session, user.token_hash)


def _user(key: ApiKey, row: ConsoleSession) -> ConsoleUser:
    return ConsoleUser(
        Principal(key.id, key.name, Role[key.role]), row.csrf_token, row.token_hash, row.expires_at
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
