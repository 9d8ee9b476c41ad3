"""Tables of the lifecycle: approvals and the append-only transition history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UTCDateTime, utcnow


class TransitionKind(StrEnum):
    transition = "transition"
    promotion = "promotion"
    rollback = "rollback"
    auto_rollback = "auto-rollback"


class Approval(SQLModel, table=True):
    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("version_pk", "key_id", name="uq_approval_once_per_key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_pk: int = Field(sa_column=Column(Integer, ForeignKey("version.id"), nullable=False, index=True))
    key_id: str = Field(sa_column=Column(String(40), nullable=False))
    approver: str = Field(sa_column=Column(String(64), nullable=False))
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Transition(SQLModel, table=True):
    """One stage change. Rows are only ever inserted (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "transition"

    id: int | None = Field(default=None, primary_key=True)
    bundle_id: int = Field(sa_column=Column(Integer, ForeignKey("bundle.id"), nullable=False, index=True))
    version_pk: int = Field(sa_column=Column(Integer, ForeignKey("version.id"), nullable=False))
    version_id: str = Field(sa_column=Column(String(80), nullable=False))
    from_stage: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    to_stage: str = Field(sa_column=Column(String(16), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    actor: str = Field(sa_column=Column(String(64), nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
