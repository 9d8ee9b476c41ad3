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
    arm: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))  # the assigned arm
    step: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))  # of a rollout
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


# --- per-subject aggregates -------------------------------------------------------------------
# Maintained in the same transaction as the events and outcomes they sum, so experiment results
# and guardrails read one row per subject (or one sketch per arm) instead of every event.
NO_EXPERIMENT = ""  # experiment_id of traffic outside experiments: the pre-period of later ones
PRE_PERIOD_STEP = -1  # step of the pre-period rows copied when an experiment starts


class SubjectAggregate(SQLModel, table=True):
    """One unit's sums under one (experiment or rollout, step, served version).

    The unit is the subject (``s:<subject>``), or the request itself when it has none
    (``r:<request id>``). Rollouts count each traffic step apart; experiments use step 0.
    """

    __tablename__ = "subject_aggregate"

    experiment_id: str = Field(sa_column=Column(String(40), primary_key=True))
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version_id: str = Field(sa_column=Column(String(80), primary_key=True))
    unit: str = Field(sa_column=Column(String(300), primary_key=True))
    assigned_arm: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    requests: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    errors: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    timed: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    latency_sum: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    latency_squares: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    streamed: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    ttft_sum: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    ttft_squares: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    cost: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


class SubjectOutcome(SQLModel, table=True):
    """One unit's outcomes of one name: how many, and their sum."""

    __tablename__ = "subject_outcome"

    experiment_id: str = Field(sa_column=Column(String(40), primary_key=True))
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version_id: str = Field(sa_column=Column(String(80), primary_key=True))
    unit: str = Field(sa_column=Column(String(300), primary_key=True))
    name: str = Field(sa_column=Column(String(128), primary_key=True))
    n: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    total: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


class MetricHistogram(SQLModel, table=True):
    """A fixed-size log-bucketed sketch of latency or TTFT per (experiment, step, version)."""

    __tablename__ = "metric_histogram"

    experiment_id: str = Field(sa_column=Column(String(40), primary_key=True))
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version_id: str = Field(sa_column=Column(String(80), primary_key=True))
    metric: str = Field(sa_column=Column(String(16), primary_key=True))
    bucket: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
