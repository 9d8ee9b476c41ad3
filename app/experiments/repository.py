"""Every query on experiments."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.dbtypes import utcnow
from app.experiments.models import Experiment, ExperimentStatus


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
    """The running or paused experiment that serves this version, if any."""
    experiments = session.exec(
        select(Experiment).where(
            Experiment.bundle_id == bundle_id,
            col(Experiment.status).in_([ExperimentStatus.running.value, ExperimentStatus.paused.value]),
        )
    )
    for experiment in experiments:
        if any(int(arm["version"]) == number for arm in experiment.arms):
            return f"experiment {experiment.id}"
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
