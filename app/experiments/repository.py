"""Every query on experiments."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from app.dbtypes import utcnow
from app.experiments.models import Experiment, ExperimentStatus
from app.experiments.rollout_models import Rollout, RolloutStatus


def add(session: Session, experiment: Experiment) -> None:
    session.add(experiment)
    session.flush()


def get(session: Session, experiment_id: str) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def lock(session: Session, experiment_id: str) -> Experiment | None:
    return session.exec(select(Experiment).where(Experiment.id == experiment_id).with_for_update()).first()


def list_for_bundle(session: Session, bundle_id: int) -> list[Experiment]:
    return list(
        session.exec(
            select(Experiment)
            .where(Experiment.bundle_id == bundle_id)
            .order_by(col(Experiment.created_at).desc())
        )
    )


def running_for_bundle(session: Session, bundle_id: int) -> Experiment | None:
    return session.exec(
        select(Experiment).where(
            Experiment.bundle_id == bundle_id, Experiment.status == ExperimentStatus.running.value
        )
    ).first()


def running_by_bundle(session: Session, bundle_ids: list[int]) -> dict[int, str]:
    rows = session.exec(
        select(Experiment.bundle_id, Experiment.id).where(
            col(Experiment.bundle_id).in_(bundle_ids), Experiment.status == ExperimentStatus.running.value
        )
    )
    return dict(rows.all())


def arm_in_use(session: Session, bundle_id: int, number: int) -> str | None:
    """The running or paused experiment, or running rollout, that serves this version, if any."""
    experiments = session.exec(
        select(Experiment).where(
            Experiment.bundle_id == bundle_id,
            col(Experiment.status).in_([ExperimentStatus.running.value, ExperimentStatus.paused.value]),
        )
    )
    for experiment in experiments:
        if any(int(arm["version"]) == number for arm in experiment.arms):
            return f"experiment {experiment.id}"
    rollout = running_rollout(session, bundle_id)
    if rollout is not None and number in (rollout.version, rollout.baseline):
        return f"rollout {rollout.id}"
    return None


def stop_active_for_bundle(session: Session, bundle_id: int, reason: str) -> list[Experiment]:
    """Stop every running or paused experiment of a bundle (the rollback path)."""
    stopped = list(
        session.exec(
            select(Experiment).where(
                Experiment.bundle_id == bundle_id,
                col(Experiment.status).in_([ExperimentStatus.running.value, ExperimentStatus.paused.value]),
            )
        )
    )
    for experiment in stopped:
        experiment.status = ExperimentStatus.stopped.value
        experiment.stopped_at = utcnow()
        experiment.stop_reason = reason
        session.add(experiment)
    session.flush()
    return stopped


# --- rollouts ------------------------------------------------------------------------------


def add_rollout(session: Session, rollout: Rollout) -> None:
    session.add(rollout)
    session.flush()


def get_rollout(session: Session, rollout_id: str) -> Rollout | None:
    return session.get(Rollout, rollout_id)


def lock_rollout(session: Session, rollout_id: str) -> Rollout | None:
    return session.exec(select(Rollout).where(Rollout.id == rollout_id).with_for_update()).first()


def running_rollout(session: Session, bundle_id: int) -> Rollout | None:
    return session.exec(
        select(Rollout).where(Rollout.bundle_id == bundle_id, Rollout.status == RolloutStatus.running.value)
    ).first()


def running_rollout_ids(session: Session) -> list[str]:
    return list(session.exec(select(Rollout.id).where(Rollout.status == RolloutStatus.running.value)))


def take_lease(session: Session, rollout_id: str, owner: str, seconds: float) -> bool:
    """Claim the right to act on a rollout; only one replica holds it at a time."""
    now = utcnow()
    result = session.execute(
        update(Rollout)
        .where(
            col(Rollout.id) == rollout_id,
            col(Rollout.status) == RolloutStatus.running.value,
            or_(
                col(Rollout.lease_until).is_(None),
                col(Rollout.lease_until) < now,
                col(Rollout.lease_owner) == owner,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stop_running_rollouts(session: Session, bundle_id: int, reason: str) -> list[Rollout]:
    """Stop the bundle's running rollout (the manual-rollback path)."""
    rollout = running_rollout(session, bundle_id)
    if rollout is None:
        return []
    rollout.status = RolloutStatus.stopped.value
    rollout.reason = reason
    rollout.finished_at = utcnow()
    session.add(rollout)
    session.flush()
    return [rollout]
