"""Every query on runtime reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.fleet.models import RuntimeReport

UPDATED = ("kind", "version_id", "digest", "stale", "last_refresh_at", "last_seen_at")


def upsert_reports(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or refresh one row per (runtime, bundle), in key order (no deadlocks between replicas)."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: (r["runtime_id"], r["bundle"]))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(RuntimeReport).values(ordered)
    statement = statement.on_conflict_do_update(
        index_elements=["runtime_id", "bundle"], set_={name: statement.excluded[name] for name in UPDATED}
    )
    session.execute(statement)


def seen_since(session: Session, bundle: str, since: datetime) -> list[RuntimeReport]:
    return list(
        session.exec(
            select(RuntimeReport)
            .where(RuntimeReport.bundle == bundle, col(RuntimeReport.last_seen_at) >= since)
            .order_by(col(RuntimeReport.runtime_id))
        )
    )
