"""initial schema: bundles, versions, evaluations, approvals, history, API keys

History and evaluations are append-only and a version's configuration is immutable:
the database refuses such UPDATEs and DELETEs itself, whatever code runs against it.

Revision ID: a6783cf2e5b3
Revises:
Create Date: 2026-11-29 12:31:16.926437
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "bundle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("checkpoint", JSON, nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("semver", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("lineage", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("author_key_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["bundle.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bundle_id", "digest", name="uq_version_digest"),
        sa.UniqueConstraint("bundle_id", "number", name="uq_version_number"),
        sa.UniqueConstraint("bundle_id", "semver", name="uq_version_semver"),
    )
    with op.batch_alter_table("version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_version_bundle_id"), ["bundle_id"], unique=False)
        batch_op.create_index(
            "uq_version_one_production",
            ["bundle_id"],
            unique=True,
            sqlite_where=sa.text("stage = 'production'"),
            postgresql_where=sa.text("stage = 'production'"),
        )

    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("approver", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_pk"],
            ["version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_pk", "key_id", name="uq_approval_once_per_key"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_version_pk"), ["version_pk"], unique=False)

    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("dataset", sa.String(length=256), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_pk"],
            ["version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluation_version_pk"), ["version_pk"], unique=False)

    op.create_table(
        "transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=80), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["bundle.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_pk"],
            ["version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transition_bundle_id"), ["bundle_id"], unique=False)

    _create_protections()


IMMUTABLE_VERSION_COLUMNS = (
    "bundle_id, number, digest, model, system_prompt, variables, checkpoint, params, semver, "
    "message, parent, lineage, metrics, author, author_key_id, created_at"
)


def _create_protections() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION chatver_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'chatver: % rows are %', TG_TABLE_NAME, TG_ARGV[0];
            END $$
            """
        )
        for table in ("transition", "evaluation"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION chatver_refuse_change('append-only')"
            )
        op.execute(
            f"CREATE TRIGGER version_immutable BEFORE UPDATE OF {IMMUTABLE_VERSION_COLUMNS} ON version "
            "FOR EACH ROW EXECUTE FUNCTION chatver_refuse_change('immutable')"
        )
        op.execute(
            "CREATE TRIGGER version_no_delete BEFORE DELETE ON version "
            "FOR EACH ROW EXECUTE FUNCTION chatver_refuse_change('immutable')"
        )
        return
    for table in ("transition", "evaluation"):
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'chatver: {table} rows are append-only'); END"
            )
    op.execute(
        f"CREATE TRIGGER version_immutable BEFORE UPDATE OF {IMMUTABLE_VERSION_COLUMNS} ON version "
        "BEGIN SELECT RAISE(ABORT, 'chatver: version rows are immutable'); END"
    )
    op.execute(
        "CREATE TRIGGER version_no_delete BEFORE DELETE ON version "
        "BEGIN SELECT RAISE(ABORT, 'chatver: version rows are immutable'); END"
    )


def _drop_protections() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    triggers = ["version_immutable", "version_no_delete"]
    if postgres:
        triggers += ["transition_append_only", "evaluation_append_only"]
    else:
        triggers += [
            f"{t}_append_only_{a}" for t in ("transition", "evaluation") for a in ("update", "delete")
        ]
    for trigger in triggers:
        table = trigger.split("_")[0]
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS chatver_refuse_change()")


def downgrade() -> None:
    _drop_protections()
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transition_bundle_id"))

    op.drop_table("transition")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_version_pk"))

    op.drop_table("evaluation")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_version_pk"))

    op.drop_table("approval")
    with op.batch_alter_table("version", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_version_one_production",
            sqlite_where=sa.text("stage = 'production'"),
            postgresql_where=sa.text("stage = 'production'"),
        )
        batch_op.drop_index(batch_op.f("ix_version_bundle_id"))

    op.drop_table("version")
    op.drop_table("bundle")
    op.drop_table("api_key")
