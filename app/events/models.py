"""Chat events (one per gateway call or reported runtime call) and their outcomes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UTCDateTime, utcnow


class ChatEvent(SQLModel, table=True):
    """Who was served by which version, and how it went. Written in batches, never updated."""

    __tablename__ = "chat_event"
    __table_args__ = (
        Index("ix_chat_event_version_time", "version_id", "created_at"),
        Index("ix_chat_event_experiment", "experiment_id", "version_id"),
    )

    # BIGINT on PostgreSQL (events add up); SQLite's rowid needs plain INTEGER.
    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    request_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    bundle: str = Field(sa_column=Column(String(63), nullable=False, index=True))
    version_id: str = Field(sa_column=Column(String(80), nullable=False))  # the version that served
    assigned_version_id: str | None = Field(default=None, sa_column=Column(String(80), nullable=True))
    experiment_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    arm: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    subject: str | None = Field(default=None, sa_column=Column(String(256), nullable=True))
    sticky: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    source: str = Field(sa_column=Column(String(16), nullable=False))  # "gateway" or "runtime"
    stream: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # ok | error | cancelled
    error: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    http_status: int | None = Field(default=None)
    latency_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    ttft_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    cost: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Outcome(SQLModel, table=True):
    """A named outcome (user feedback or a runtime-reported metric) of one request."""

    __tablename__ = "outcome"
    __table_args__ = (
        UniqueConstraint("request_id", "name", name="uq_outcome_request_name"),
        Index("ix_outcome_version_name", "version_id", "name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(sa_column=Column(String(64), nullable=False))
    version_id: str = Field(sa_column=Column(String(80), nullable=False))
    experiment_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    subject: str | None = Field(default=None, sa_column=Column(String(256), nullable=True))
    name: str = Field(sa_column=Column(String(128), nullable=False))
    value: float = Field(sa_column=Column(Float, nullable=False))
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
