"""Experiments: arms over versions of one bundle, at most one running per bundle."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from app.dbtypes import JSONType, UTCDateTime, utcnow


class ExperimentStatus(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    stopped = "stopped"


class Experiment(SQLModel, table=True):
    __tablename__ = "experiment"
    __table_args__ = (
        # The database itself allows one running experiment per bundle.
        Index(
            "uq_experiment_one_running",
            "bundle_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    bundle_id: int = Field(sa_column=Column(Integer, ForeignKey("bundle.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(128), nullable=False))
    status: str = Field(default=ExperimentStatus.draft.value, sa_column=Column(String(16), nullable=False))
    # [{"name": "control", "version": 3, "weight": 50}, ...]; the first arm is the control.
    arms: list[dict[str, Any]] = Field(sa_column=Column(JSONType, nullable=False))
    primary_metric: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    guardrails: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    seed: str = Field(sa_column=Column(String(256), nullable=False))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    stopped_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    winner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    stop_reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
