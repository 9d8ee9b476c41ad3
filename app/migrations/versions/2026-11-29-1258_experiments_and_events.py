"""experiments, chat events and outcomes

One running experiment per bundle is enforced by a partial unique index.

Revision ID: 0002_experiments_events
Revises: 0001_initial
Create Date: 2026-11-29 12:58:46.341220
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0002_experiments_events"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("bundle", sa.String(length=63), nullable=False),
        sa.Column("version_id", sa.String(length=80), nullable=False),
        sa.Column("assigned_version_id", sa.String(length=80), nullable=True),
        sa.Column("experiment_id", sa.String(length=40), nullable=True),
        sa.Column("arm", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=256), nullable=True),
        sa.Column("sticky", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=128), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    with op.batch_alter_table("chat_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_event_bundle"), ["bundle"], unique=False)
        batch_op.create_index("ix_chat_event_experiment", ["experiment_id", "version_id"], unique=False)
        batch_op.create_index("ix_chat_event_version_time", ["version_id", "created_at"], unique=False)

    op.create_table(
        "outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=80), nullable=False),
        sa.Column("experiment_id", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "name", name="uq_outcome_request_name"),
    )
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_version_name", ["version_id", "name"], unique=False)

    op.create_table(
        "experiment",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("arms", JSON, nullable=False),
        sa.Column("primary_metric", sa.String(length=128), nullable=True),
        sa.Column("guardrails", JSON, nullable=False),
        sa.Column("seed", sa.String(length=256), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner", sa.String(length=64), nullable=True),
        sa.Column("stop_reason", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["bundle.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_bundle_id"), ["bundle_id"], unique=False)
        batch_op.create_index(
            "uq_experiment_one_running",
            ["bundle_id"],
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_experiment_one_running",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_index(batch_op.f("ix_experiment_bundle_id"))

    op.drop_table("experiment")
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_version_name")

    op.drop_table("outcome")
    with op.batch_alter_table("chat_event", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_event_version_time")
        batch_op.drop_index("ix_chat_event_experiment")
        batch_op.drop_index(batch_op.f("ix_chat_event_bundle"))

    op.drop_table("chat_event")
