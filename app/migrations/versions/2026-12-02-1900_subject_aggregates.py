"""per-subject aggregates and latency histograms for experiment results; the rollout step of each event;
a time limit per rollout step

Existing events and outcomes are summed into the new tables, so experiments that are running
when this migration runs keep their data. Rollout events had no step before this revision, so a
running rollout's current step starts its evidence (and its time limit) afresh.

Revision ID: 0004_subject_aggregates
Revises: 0003_rollouts
Create Date: 2026-12-02 19:00:00
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004_subject_aggregates"
down_revision: str | None = "0003_rollouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The histogram's bucket mapping (app.events.aggregates.histogram_bucket at this revision).
GAMMA, FLOOR = 1.02, 0.01


def _bucket(value: float) -> int:
    return 0 if value < FLOOR else 1 + math.floor(math.log(value / FLOOR) / math.log(GAMMA))


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version_id", sa.String(length=80), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("chat_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sa.Integer(), nullable=True))
    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_wait_seconds", sa.Integer(), server_default="86400", nullable=False)
        )
    op.create_table(
        "subject_aggregate",
        *_key(),
        sa.Column("unit", sa.String(length=300), nullable=False),
        sa.Column("assigned_arm", sa.String(length=64), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ("requests", "errors", "timed")),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_squares", sa.Float(), nullable=False),
        sa.Column("streamed", sa.Integer(), nullable=False),
        sa.Column("ttft_sum", sa.Float(), nullable=False),
        sa.Column("ttft_squares", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "step", "version_id", "unit"),
    )
    op.create_table(
        "subject_outcome",
        *_key(),
        sa.Column("unit", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "step", "version_id", "unit", "name"),
    )
    op.create_table(
        "metric_histogram",
        *_key(),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "step", "version_id", "metric", "bucket"),
    )
    _backfill()
    rollout = sa.table(
        "rollout", sa.column("status", sa.String()), sa.column("step_started_at", sa.DateTime(timezone=True))
    )
    now = datetime.now(UTC)
    op.execute(rollout.update().where(rollout.c.status == "running").values(step_started_at=now))


def _backfill() -> None:
    # The SQL below is built from constants only (no input reaches it).
    unit = "CASE WHEN subject IS NOT NULL THEN 's:' || subject ELSE 'r:' || request_id END"
    op.execute(
        f"""
        INSERT INTO subject_aggregate (experiment_id, step, version_id, unit, assigned_arm, requests, errors,
            timed, latency_sum, latency_squares, streamed, ttft_sum, ttft_squares, cost)
        SELECT COALESCE(experiment_id, ''), 0, version_id, {unit}, MIN(arm), COUNT(*),
            SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
            COUNT(latency_ms), COALESCE(SUM(latency_ms), 0), COALESCE(SUM(latency_ms * latency_ms), 0),
            COUNT(ttft_ms), COALESCE(SUM(ttft_ms), 0), COALESCE(SUM(ttft_ms * ttft_ms), 0),
            COALESCE(SUM(cost), 0)
        FROM chat_event WHERE experiment_id IS NOT NULL OR subject IS NOT NULL
        GROUP BY COALESCE(experiment_id, ''), version_id, {unit}
        """  # noqa: S608
    )
    op.execute(
        f"""
        INSERT INTO subject_outcome (experiment_id, step, version_id, unit, name, n, total)
        SELECT COALESCE(experiment_id, ''), 0, version_id, {unit}, name, COUNT(*), SUM(value)
        FROM outcome WHERE experiment_id IS NOT NULL OR subject IS NOT NULL
        GROUP BY COALESCE(experiment_id, ''), version_id, {unit}, name
        """  # noqa: S608
    )
    bind = op.get_bind()
    counts: dict[tuple[str, str, str, int], int] = {}
    rows = bind.execute(
        sa.text(
            "SELECT experiment_id, version_id, latency_ms, ttft_ms FROM chat_event "
            "WHERE experiment_id IS NOT NULL"
        )
    )
    for experiment_id, version_id, latency, ttft in rows:
        for metric, value in (("latency_ms", latency), ("ttft_ms", ttft)):
            if value is not None:
                key = (experiment_id, version_id, metric, _bucket(value))
                counts[key] = counts.get(key, 0) + 1
    if counts:
        bind.execute(
            sa.text(
                "INSERT INTO metric_histogram (experiment_id, step, version_id, metric, bucket, count) "
                "VALUES (:e, 0, :v, :m, :b, :c)"
            ),
            [{"e": e, "v": v, "m": m, "b": b, "c": c} for (e, v, m, b), c in counts.items()],
        )


def downgrade() -> None:
    op.drop_table("metric_histogram")
    op.drop_table("subject_outcome")
    op.drop_table("subject_aggregate")
    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.drop_column("max_wait_seconds")
    with op.batch_alter_table("chat_event", schema=None) as batch_op:
        batch_op.drop_column("step")
