"""What each runtime last said it serves, one row per (runtime, bundle)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, String
from sqlmodel import Field, SQLModel

from app.dbtypes import UTCDateTime, utcnow


class RuntimeReport(SQLModel, table=True):
    __tablename__ = "runtime_report"

    runtime_id: str = Field(sa_column=Column(String(128), primary_key=True))
    bundle: str = Field(sa_column=Column(String(64), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # sdk | gateway
    version_id: str = Field(sa_column=Column(String(80), nullable=False))
    digest: str = Field(sa_column=Column(String(80), nullable=False))
    stale: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    last_refresh_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
