"""Every query on the per-subject aggregates: incremental upserts and the sums results read.

Writers add to the aggregates in the same transaction as the events and outcomes they sum.
Readers get, per arm, the sums the delta method needs (Σy, Σy², Σd, Σd², Σyd and the CUPED
covariate sums) from one grouped SQL query, so their cost follows the number of subjects,
never the number of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Float, and_, case, cast, distinct, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col

from app.events.aggregates import histogram_bucket
from app.events.models import (
    NO_EXPERIMENT,
    PRE_PERIOD_STEP,
    MetricHistogram,
    SubjectAggregate,
    SubjectOutcome,
)

SUBJECT_KEY = ("experiment_id", "step", "version_id", "unit")
SUBJECT_SUMS = (
    "requests",
    "errors",
    "timed",
    "latency_sum",
    "latency_squares",
    "streamed",
    "ttft_sum",
    "ttft_squares",
    "cost",
)
OUTCOME_KEY = (*SUBJECT_KEY, "name")
HISTOGRAM_KEY = (*SUBJECT_KEY[:3], "metric", "bucket")
# Per-request metrics as ratios of per-unit sums: name → (numerator, denominator) columns.
RATIO_METRICS = {
    "error_rate": ("errors", "requests"),
    "latency_ms": ("latency_sum", "timed"),
    "ttft_ms": ("ttft_sum", "streamed"),
    "cost_per_request": ("cost", "requests"),
}
RATIO_SUMS = ("y", "yy", "d", "dd", "yd", "x", "xx", "yx", "dx", "nx")


def unit_key(subject: str | None, request_id: str) -> str:
    """The unit of analysis: the subject, or the request itself when it has none."""
    return f"s:{subject}" if subject is not None else f"r:{request_id}"


def _increment(
    session: Session,
    model: type[SQLModel],
    keys: Sequence[str],
    sums: Sequence[str],
    rows: Iterable[dict[str, Any]],
    keep: Sequence[str] = (),
) -> None:
    """Insert rows, or add their sums to the rows already there (in key order: no deadlocks)."""
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in keys))
    if not ordered:
        return
    table = model.__table__  # type: ignore[attr-defined]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    update = {name: table.c[name] + statement.excluded[name] for name in sums}
    update.update({name: func.coalesce(table.c[name], statement.excluded[name]) for name in keep})
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=update), ordered)


def add_event_aggregates(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Add a batch of chat event rows to their units' sums and their arms' latency sketches.

    Traffic outside experiments is summed per subject too: it is the pre-period of the next one.
    """
    units: dict[tuple[Any, ...], dict[str, Any]] = {}
    buckets: dict[tuple[Any, ...], int] = {}
    for event in events:
        experiment_id = event["experiment_id"]
        if experiment_id is None and event["subject"] is None:
            continue
        step = (event["step"] or 0) if experiment_id is not None else 0
        key = (experiment_id or NO_EXPERIMENT, step, event["version_id"])
        unit = unit_key(event["subject"], event["request_id"])
        row = units.get((*key, unit))
        if row is None:
            row = dict(zip(SUBJECT_KEY, (*key, unit), strict=True))
            row.update({name: 0 for name in SUBJECT_SUMS}, assigned_arm=event["arm"])
            units[(*key, unit)] = row
        latency, ttft = event["latency_ms"], event["ttft_ms"]
        row["requests"] += 1
        row["errors"] += event["status"] == "error"
        row["cost"] += event["cost"] or 0.0
        if latency is not None:
            row["timed"] += 1
            row["latency_sum"] += latency
            row["latency_squares"] += latency * latency
        if ttft is not None:
            row["streamed"] += 1
            row["ttft_sum"] += ttft
            row["ttft_squares"] += ttft * ttft
        if experiment_id is None:
            continue
        for metric, value in (("latency_ms", latency), ("ttft_ms", ttft)):
            if value is not None:
                bucket = (*key, metric, histogram_bucket(value))
                buckets[bucket] = buckets.get(bucket, 0) + 1
    _increment(session, SubjectAggregate, SUBJECT_KEY, SUBJECT_SUMS, units.values(), keep=("assigned_arm",))
    _increment(
        session,
        MetricHistogram,
        HISTOGRAM_KEY,
        ("count",),
        (dict(zip(HISTOGRAM_KEY, key, strict=True), count=count) for key, count in buckets.items()),
    )


def add_outcome(session: Session, key: tuple[str, int, str, str], name: str, n: int, total: float) -> None:
    """Add ``n`` outcomes summing to ``total`` (n may be 0: a replaced value) to one unit."""
    _increment(
        session,
        SubjectOutcome,
        OUTCOME_KEY,
        ("n", "total"),
        [dict(zip(OUTCOME_KEY, (*key, name), strict=True), n=n, total=total)],
    )


def lock_outcome(session: Session, key: tuple[str, int, str, str], name: str) -> None:
    """Hold the unit's row for this outcome until commit, so replacements of one value serialize."""
    add_outcome(session, key, name, 0, 0.0)
    where = [col(getattr(SubjectOutcome, k)) == v for k, v in zip(OUTCOME_KEY, (*key, name), strict=True)]
    session.execute(sa_select(col(SubjectOutcome.n)).where(*where).with_for_update())


def copy_pre_period(session: Session, *, experiment_id: str, version_id: str) -> None:
    """Snapshot every subject's sums on ``version_id`` outside experiments as the experiment's pre-period."""
    a, o = SubjectAggregate.__table__, SubjectOutcome.__table__  # type: ignore[attr-defined]
    scope = and_(a.c.experiment_id == NO_EXPERIMENT, a.c.step == 0, a.c.version_id == version_id)
    columns = [literal(experiment_id), literal(PRE_PERIOD_STEP), a.c.version_id, a.c.unit, a.c.assigned_arm]
    session.execute(
        a.insert().from_select(
            [*SUBJECT_KEY, "assigned_arm", *SUBJECT_SUMS],
            sa_select(*columns, *(a.c[name] for name in SUBJECT_SUMS)).where(scope),
        )
    )
    scope = and_(o.c.experiment_id == NO_EXPERIMENT, o.c.step == 0, o.c.version_id == version_id)
    session.execute(
        o.insert().from_select(
            [*OUTCOME_KEY, "n", "total"],
            sa_select(*columns[:2], o.c.version_id, o.c.unit, o.c.name, o.c.n, o.c.total).where(scope),
        )
    )


# --- reads -------------------------------------------------------------------------------------


def _f(expression: Any) -> Any:
    return cast(expression, Float)


def _ratio_columns(prefix: str, y: Any, d: Any, x: Any, has_x: Any) -> list[Any]:
    parts = (y, y * y, d, d * d, y * d, x, x * x, y * x, d * x, has_x)
    return [
        func.coalesce(func.sum(part), 0).label(f"{prefix}.{name}")
        for name, part in zip(RATIO_SUMS, parts, strict=True)
    ]


def arm_sums(session: Session, experiment_id: str, step: int = 0) -> dict[str, dict[str, float]]:
    """version id → per-unit sums of every ratio metric (``error_rate.y`` …), units and totals."""
    a = SubjectAggregate.__table__  # type: ignore[attr-defined]
    pre = aliased(SubjectAggregate.__table__, name="pre")  # type: ignore[attr-defined]
    joined = a.outerjoin(
        pre,
        and_(pre.c.experiment_id == a.c.experiment_id, pre.c.step == PRE_PERIOD_STEP, pre.c.unit == a.c.unit),
    )
    columns: list[Any] = [
        a.c.version_id,
        func.count().label("units"),
        func.sum(a.c.requests).label("requests"),
        func.sum(a.c.errors).label("errors"),
        func.sum(a.c.cost).label("cost"),
        func.sum(a.c.latency_squares).label("latency_squares"),
        func.sum(a.c.ttft_squares).label("ttft_squares"),
    ]
    for metric, (y, d) in RATIO_METRICS.items():
        has = case((pre.c[d] > 0, 1.0), else_=0.0)
        x = case((pre.c[d] > 0, _f(pre.c[y]) / _f(pre.c[d])), else_=0.0)
        columns += _ratio_columns(metric, _f(a.c[y]), _f(a.c[d]), x, has)
    has = case((pre.c.requests > 0, 1.0), else_=0.0)
    columns += _ratio_columns(
        "requests_per_subject", _f(a.c.requests), literal(1.0), _f(func.coalesce(pre.c.requests, 0)), has
    )
    query = (
        sa_select(*columns)
        .select_from(joined)
        .where(a.c.experiment_id == experiment_id, a.c.step == step)
        .group_by(a.c.version_id)
    )
    return {
        row.version_id: {k: float(v or 0) for k, v in row._mapping.items() if k != "version_id"}
        for row in session.execute(query)
    }


def outcome_sums(
    session: Session, experiment_id: str, step: int = 0
) -> dict[tuple[str, str], dict[str, float]]:
    """(version id, outcome name) → the outcome's per-unit sums (y = values, d = count) with covariates.

    ``x``/``xx``/``nx`` cover every exposed unit with a pre-period value of that outcome.
    """
    o = SubjectOutcome.__table__  # type: ignore[attr-defined]
    pre = aliased(SubjectOutcome.__table__, name="pre")  # type: ignore[attr-defined]
    pre_on = and_(
        pre.c.experiment_id == o.c.experiment_id,
        pre.c.step == PRE_PERIOD_STEP,
        pre.c.unit == o.c.unit,
        pre.c.name == o.c.name,
    )
    x = case((pre.c.n > 0, _f(pre.c.total) / _f(pre.c.n)), else_=0.0)
    y, d = _f(o.c.total), _f(o.c.n)
    query = (
        sa_select(
            o.c.version_id,
            o.c.name,
            func.count().label("units_with_outcome"),
            *(
                func.coalesce(func.sum(part), 0).label(name)
                for name, part in (
                    ("y", y),
                    ("yy", y * y),
                    ("d", d),
                    ("dd", d * d),
                    ("yd", y * d),
                    ("yx", y * x),
                    ("dx", d * x),
                )
            ),
        )
        .select_from(o.outerjoin(pre, pre_on))
        .where(o.c.experiment_id == experiment_id, o.c.step == step, o.c.n > 0)
        .group_by(o.c.version_id, o.c.name)
    )
    sums = {
        (row.version_id, row.name): {
            k: float(v or 0) for k, v in row._mapping.items() if k not in {"version_id", "name"}
        }
        for row in session.execute(query)
    }
    a = SubjectAggregate.__table__  # type: ignore[attr-defined]
    px = _f(pre.c.total) / _f(pre.c.n)
    covariates = (
        sa_select(
            a.c.version_id,
            pre.c.name,
            func.sum(px).label("x"),
            func.sum(px * px).label("xx"),
            func.count().label("nx"),
        )
        .select_from(
            a.join(
                pre,
                and_(
                    pre.c.experiment_id == a.c.experiment_id,
                    pre.c.step == PRE_PERIOD_STEP,
                    pre.c.unit == a.c.unit,
                ),
            )
        )
        .where(a.c.experiment_id == experiment_id, a.c.step == step, pre.c.n > 0)
        .group_by(a.c.version_id, pre.c.name)
    )
    for row in session.execute(covariates):
        entry = sums.get((row.version_id, row.name))
        if entry is not None:
            entry.update(x=float(row.x), xx=float(row.xx), nx=float(row.nx))
    return sums


def histograms(session: Session, experiment_id: str, step: int = 0) -> dict[tuple[str, str], dict[int, int]]:
    """(version id, metric) → bucket → count."""
    h = MetricHistogram
    query = sa_select(col(h.version_id), col(h.metric), col(h.bucket), col(h.count)).where(
        col(h.experiment_id) == experiment_id, col(h.step) == step
    )
    out: dict[tuple[str, str], dict[int, int]] = {}
    for version, metric, bucket, count in session.execute(query):
        out.setdefault((version, metric), {})[int(bucket)] = int(count)
    return out


def assignment_counts(session: Session, experiment_id: str) -> dict[tuple[str | None, str], int]:
    """(assigned arm, served version) → units: who was meant for which arm, and what served them."""
    a = SubjectAggregate
    query = (
        sa_select(col(a.assigned_arm), col(a.version_id), func.count())
        .where(col(a.experiment_id) == experiment_id, col(a.step) >= 0)
        .group_by(col(a.assigned_arm), col(a.version_id))
    )
    return {(arm, version): int(n) for arm, version, n in session.execute(query)}


def units_by_assigned_arm(session: Session, experiment_id: str) -> dict[str | None, int]:
    """Assigned arm → distinct units: each unit counted once, in the arm it was assigned."""
    a = SubjectAggregate
    query = (
        sa_select(col(a.assigned_arm), func.count(distinct(col(a.unit))))
        .where(col(a.experiment_id) == experiment_id, col(a.step) >= 0)
        .group_by(col(a.assigned_arm))
    )
    return {arm: int(n) for arm, n in session.execute(query)}


def crossover_units(
    session: Session, experiment_id: str, arm_versions: dict[str, str]
) -> tuple[int, int, int]:
    """Units that a sticky assignment would never produce: (served more than one version, served a
    version other than their assigned arm's, either of the two), each unit counted once."""
    a = SubjectAggregate
    matches = [
        (and_(col(a.assigned_arm) == arm, col(a.version_id) == v), 0) for arm, v in arm_versions.items()
    ]
    wrong = case((col(a.assigned_arm).is_(None), 0), *matches, else_=1)
    per_unit = (
        sa_select(
            (func.count(distinct(col(a.version_id))) > 1).label("several"),
            (func.max(wrong) == 1).label("other"),
        )
        .where(col(a.experiment_id) == experiment_id, col(a.step) >= 0)
        .group_by(col(a.unit))
        .subquery()
    )
    several, other = per_unit.c.several, per_unit.c.other
    query = sa_select(
        func.coalesce(func.sum(case((several, 1), else_=0)), 0),
        func.coalesce(func.sum(case((other, 1), else_=0)), 0),
        func.coalesce(func.sum(case((or_(several, other), 1), else_=0)), 0),
    )
    row = session.execute(query).one()
    return int(row[0]), int(row[1]), int(row[2])
