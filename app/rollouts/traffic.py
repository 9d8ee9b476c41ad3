"""Experiments and rollouts answering the registry's and the lifecycle's questions
(``app.bundles.traffic.Traffic``). Rollouts sit above experiments, so this lives here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from app.bundles.traffic import Splitting
from app.experiments import repository as experiments_repo
from app.rollouts import repository as rollouts_repo


class BundleTraffic:
    """Experiments and guarded rollouts, as the registry and the lifecycle see them."""

    def serving(self, session: Session, bundle_id: int, number: int) -> str | None:
        user = experiments_repo.arm_in_use(session, bundle_id, number)
        if user is not None:
            return user
        rollout = rollouts_repo.running(session, bundle_id)
        if rollout is not None and number in (rollout.version, rollout.baseline):
            return f"rollout {rollout.id}"
        return None

    def running(self, session: Session, bundle_ids: Sequence[int]) -> dict[int, Splitting]:
        ids = list(bundle_ids)
        experiments = experiments_repo.running_by_bundle(session, ids)
        rollouts = rollouts_repo.running_by_bundle(session, ids)
        return {
            bundle_id: Splitting(experiments.get(bundle_id), rollouts.get(bundle_id))
            for bundle_id in experiments.keys() | rollouts.keys()
        }

    def stop_all(self, session: Session, bundle_id: int, reason: str) -> None:
        experiments_repo.stop_active_for_bundle(session, bundle_id, reason)
        rollouts_repo.stop_running(session, bundle_id, reason)


TRAFFIC = BundleTraffic()
