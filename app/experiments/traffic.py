"""Experiments and rollouts answering the lifecycle's questions (app.lifecycle.traffic.Traffic)."""

from __future__ import annotations

from sqlmodel import Session

from app.experiments import repository as experiments_repo
from app.rollouts import repository as rollouts_repo


class BundleTraffic:
    """Experiments and guarded rollouts, as the lifecycle sees them."""

    def serving(self, session: Session, bundle_id: int, number: int) -> str | None:
        user = experiments_repo.arm_in_use(session, bundle_id, number)
        if user is not None:
            return user
        rollout = rollouts_repo.running(session, bundle_id)
        if rollout is not None and number in (rollout.version, rollout.baseline):
            return f"rollout {rollout.id}"
        return None

    def stop_all(self, session: Session, bundle_id: int, reason: str) -> None:
        experiments_repo.stop_active_for_bundle(session, bundle_id, reason)
        rollouts_repo.stop_running(session, bundle_id, reason)


TRAFFIC = BundleTraffic()
