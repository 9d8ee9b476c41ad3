"""runtime reports for the fleet view

Revision ID: 0006_fleet
Revises: 0005_console_sessions
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_fleet"
down_revision: str | None = "0005_console_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runtime_report",
        sa.Column("runtime_id", sa.String(length=128), nullable=False),
        sa.Column("bundle", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version_id", sa.String(length=80), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("last_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("runtime_id", "bundle"),
    )
    with op.batch_alter_table("runtime_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runtime_report_last_seen_at"), ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runtime_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runtime_report_last_seen_at"))
    op.drop_table("runtime_report")
