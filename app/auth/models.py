"""API keys: only a SHA-256 of the secret is stored."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from app.dbtypes import UTCDateTime, utcnow


class Role(IntEnum):
    """Each role includes the ones before it."""

    runtime = 1
    editor = 2
    approver = 3
    admin = 4


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    name: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    # sha256 hex of the whole secret; keys are 256-bit random, so a fast hash is enough
    # and keeps authentication cheap on the hot path.
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    prefix: str = Field(sa_column=Column(String(16), nullable=False))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class ConsoleSession(SQLModel, table=True):
    """A browser console sign-in. The cookie holds a signed random token; only its SHA-256 is stored,
    so a database dump cannot be replayed as a cookie. Deleted at sign-out."""

    __tablename__ = "console_session"

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    key_id: str = Field(
        sa_column=Column(String(40), ForeignKey("api_key.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    csrf_token: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class ServerSecret(SQLModel, table=True):
    """Secrets every replica must share (the console's cookie-signing key), made once at first start."""

    __tablename__ = "server_secret"

    name: str = Field(sa_column=Column(String(40), primary_key=True))
    value: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
