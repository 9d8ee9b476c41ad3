"""Tables of the registry: bundles, their immutable versions, and appended evaluations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.dbtypes import JSONType, UTCDateTime, utcnow


class Stage(StrEnum):
    draft = "draft"
    staging = "staging"
    validation = "validation"
    production = "production"
    archived = "archived"


class Bundle(SQLModel, table=True):
    __tablename__ = "bundle"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(63), nullable=False, unique=True))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    required_approvals: int = Field(default=1, nullable=False)
    # The last version number handed out; numbers are never reused.
    last_number: int = Field(default=0, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Version(SQLModel, table=True):
    """One immutable configuration of a bundle. Only ``stage`` ever changes."""

    __tablename__ = "version"
    __table_args__ = (
        UniqueConstraint("bundle_id", "number", name="uq_version_number"),
        UniqueConstraint("bundle_id", "digest", name="uq_version_digest"),
        UniqueConstraint("bundle_id", "semver", name="uq_version_semver"),
        # The database itself guarantees at most one production version per bundle.
        Index(
            "uq_version_one_production",
            "bundle_id",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    bundle_id: int = Field(sa_column=Column(Integer, ForeignKey("bundle.id"), nullable=False, index=True))
    number: int = Field(nullable=False)
    digest: str = Field(sa_column=Column(String(71), nullable=False))
    stage: str = Field(default=Stage.draft.value, sa_column=Column(String(16), nullable=False))
    model: str = Field(sa_column=Column(String(256), nullable=False))
    system_prompt: str = Field(sa_column=Column(Text, nullable=False))
    variables: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    checkpoint: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    semver: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    message: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    parent: int | None = Field(default=None)
    lineage: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    author: str = Field(sa_column=Column(String(64), nullable=False))
    author_key_id: str = Field(sa_column=Column(String(40), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Evaluation(SQLModel, table=True):
    """An evaluation result appended to a version; never overwritten."""

    __tablename__ = "evaluation"

    id: int | None = Field(default=None, primary_key=True)
    version_pk: int = Field(sa_column=Column(Integer, ForeignKey("version.id"), nullable=False, index=True))
    metrics: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    dataset: str | None = Field(default=None, sa_column=Column(String(256), nullable=True))
    author: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
