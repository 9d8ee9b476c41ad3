"""Guarded rollouts: a version ramped through traffic steps, promoted or rolled back on evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from app.dbtypes import JSONType, UTCDateTime, utcnow
from app.experiments.assignment import Arm


class RolloutStatus(StrEnum):
    running = "running"
    promoted = "promoted"
    rolled_back = "rolled-back"
    stopped = "stopped"


class Rollout(SQLModel, table=True):
    __tablename__ = "rollout"
    __table_args__ = (
        Index(
            "uq_rollout_one_running",
            "bundle_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    bundle_id: int = Field(sa_column=Column(Integer, ForeignKey("bundle.id"), nullable=False, index=True))
    version: int = Field(nullable=False)  # the candidate
    baseline: int = Field(nullable=False)  # production when the rollout started
    steps: list[int] = Field(sa_column=Column(JSONType, nullable=False))
    step: int = Field(default=0, nullable=False)  # index into steps
    min_requests_per_step: int = Field(nullable=False)
    # A step that gathers no passing evidence for this long stops the rollout (traffic returns to production).
    max_wait_seconds: int = Field(
        default=86_400, sa_column=Column(Integer, nullable=False, server_default="86400")
    )
    guardrails: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    status: str = Field(default=RolloutStatus.running.value, sa_column=Column(String(16), nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    step_started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Lease: the replica that may act on this rollout until lease_until.
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


def ramp_arms(percent: float) -> tuple[Arm, Arm]:
    """A rollout step's split: the candidate takes [0, percent) of the hash space, so as the ramp
    grows everyone already on the candidate stays on it."""
    return Arm("candidate", percent), Arm("baseline", max(100.0 - percent, 1e-9))
