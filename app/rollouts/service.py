"""Rules of guarded rollouts: who may start one, how it ramps, when it promotes or rolls back.

A step advances only on evidence: every guardrail has enough data within the step and passes,
and the candidate served ``min_requests_per_step`` requests in it. Each step is compared on
its own traffic (the split changes between steps, so pooling them would mix allocations), and
every check runs at α shared by all guardrails of all steps (Bonferroni), so a healthy version
is rolled back with probability at most α however long it ramps.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.bundles import repository as bundles_repo
from app.bundles import service as bundles
from app.bundles.models import Bundle, Stage
from app.dbtypes import rfc3339, utcnow
from app.errors import ChatverError, Conflict, NotFound
from app.events.service import ExperimentArms
from app.experiments import repository as experiments_repo
from app.experiments import service as experiments_service
from app.experiments.assignment import assign_arm
from app.experiments.evidence import ArmEvidence, load_arms
from app.experiments.guardrails import GuardrailCheck, check_guardrail, family_alpha
from app.lifecycle import service as lifecycle
from app.rollouts import repository
from app.rollouts.models import Rollout, RolloutStatus, ramp_arms
from app.rollouts.schemas import RolloutCreate, RolloutGuardrailPublic, RolloutPublic, RolloutStop
from app.rollouts.traffic import TRAFFIC

SYSTEM = Principal("system", "system", Role.admin)


def new_rollout_id() -> str:
    return "ro_" + secrets.token_hex(8)


def create_rollout(*, session: Session, bundle_name: str, body: RolloutCreate, actor: Principal) -> Rollout:
    """Start ramping an approved version; at most one experiment or rollout runs per bundle."""
    bundle = bundles.lock_bundle(session=session, name=bundle_name)
    version = bundles.get_version(session=session, bundle=bundle, selector=body.version)
    label = bundles.version_id(bundle.name, version.number)
    production = bundles_repo.production_version(session, bundle.id or 0)
    if production is None:
        raise Conflict(f"{bundle.name} has no production version to roll out against", type_="no-production")
    if version.stage != Stage.validation.value:
        raise Conflict(
            f"{label} is in {version.stage}; a rollout needs a version in validation",
            type_="illegal-transition",
        )
    lifecycle.check_approvals(session=session, bundle=bundle, version=version)
    if experiments_repo.running_for_bundle(session, bundle.id or 0) is not None:
        raise Conflict(
            f"an experiment is running on {bundle.name}; stop it first", type_="experiment-running"
        )
    if repository.running(session, bundle.id or 0) is not None:
        raise Conflict(f"a rollout is already running on {bundle.name}", type_="rollout-running")
    rollout = Rollout(
        id=new_rollout_id(),
        bundle_id=bundle.id or 0,
        version=version.number,
        baseline=production.number,
        steps=body.steps,
        min_requests_per_step=body.min_requests_per_step,
        max_wait_seconds=body.max_wait_seconds,
        guardrails=[g.model_dump() for g in body.guardrails],
        created_by=actor.name,
    )
    repository.add(session, rollout)
    bundles.bundle_changed(session, bundle.name)
    return rollout


def get_rollout(*, session: Session, rollout_id: str) -> Rollout:
    rollout = repository.get(session, rollout_id)
    if rollout is None:
        raise NotFound(f"no rollout {rollout_id!r}", type_="unknown-rollout")
    return rollout


@dataclass(frozen=True)
class StepEvidence:
    """The current step's two arms and every guardrail's verdict on them."""

    candidate: ArmEvidence
    baseline: ArmEvidence
    checks: list[GuardrailCheck]

    def waiting_for(self, rollout: Rollout) -> list[str]:
        """What keeps the step from advancing; empty when it may.

        Every step needs each guardrail's estimate within its tolerance. The last step before 100%
        promotes, so it needs more: each regression's always-valid *upper* bound within the
        tolerance, i.e. evidence that the candidate is not worse than tolerated, not just no
        evidence that it is.
        """
        needs = [
            check.evidence() if check.status != "insufficient-data" else f"{check.metric}: not enough data"
            for check in self.checks
            if check.status != "ok"
        ]
        if rollout.steps[rollout.step + 1] == 100:
            needs += [
                f"{check.metric}: not yet shown within tolerance before promotion (always-valid upper "
                f"bound {_percent(check.upper, check.metric)}, tolerance "
                f"{_percent(check.max_regression, check.metric)})"
                for check in self.checks
                if check.status == "ok" and not check.within_tolerance
            ]
        if self.candidate.requests < rollout.min_requests_per_step:
            needs.append(
                f"{rollout.min_requests_per_step - self.candidate.requests} more requests on the candidate "
                f"({self.candidate.requests} of {rollout.min_requests_per_step})"
            )
        return needs


def _percent(value: float | None, metric: str) -> str:
    if value is None:
        return "unknown"
    return f"{100 * value:+.1f}{'pp' if metric == 'error_rate' else '%'}"


def step_evidence(session: Session, rollout: Rollout, bundle: Bundle) -> StepEvidence:
    candidate_id = bundles.version_id(bundle.name, rollout.version)
    baseline_id = bundles.version_id(bundle.name, rollout.baseline)
    arms = load_arms(session, rollout.id, rollout.step, [candidate_id, baseline_id])
    # Every step but the last (100%, the promotion) is a comparison; all share α.
    alpha = family_alpha(len(rollout.guardrails), len(rollout.steps) - 1)
    checks = [
        check_guardrail(
            rail["metric"], float(rail["max_regression"]), arms[baseline_id], arms[candidate_id], alpha
        )
        for rail in rollout.guardrails
    ]
    return StepEvidence(arms[candidate_id], arms[baseline_id], checks)


def _finish(rollout: Rollout, status: RolloutStatus, reason: str) -> None:
    rollout.status = status.value
    rollout.reason = reason
    rollout.finished_at = utcnow()


def evaluate_rollout(*, session: Session, rollout_id: str) -> str:
    """One controller step: roll back on a significant regression, advance on passing evidence.

    Safe to call after every batch of traffic: guardrails fail only on always-valid evidence.
    Returns "rolled-back", "advanced", "promoted", "waiting", "timed-out", "stopped" or "inactive".
    """
    rollout = repository.lock(session, rollout_id)
    if rollout is None or rollout.status != RolloutStatus.running.value:
        return "inactive"
    bundle = session.get(Bundle, rollout.bundle_id)
    assert bundle is not None
    bundle = bundles.lock_bundle(session=session, name=bundle.name)
    evidence = step_evidence(session, rollout, bundle)
    candidate_label = bundles.version_id(bundle.name, rollout.version)
    percent = rollout.steps[rollout.step]
    failing = [check for check in evidence.checks if check.status == "failing"]
    if failing:
        detail = "; ".join(check.evidence() for check in failing)
        _finish(rollout, RolloutStatus.rolled_back, f"guardrail failed at {percent}% traffic: {detail}")
        session.add(rollout)
        version = bundles.get_version(session=session, bundle=bundle, selector=rollout.version)
        lifecycle.record_auto_rollback(
            session=session,
            bundle=bundle,
            version=version,
            reason=f"rollout {rollout.id} of {candidate_label}: {rollout.reason}",
        )
        return "rolled-back"
    waiting = evidence.waiting_for(rollout)
    if waiting:
        if utcnow() - rollout.step_started_at <= timedelta(seconds=rollout.max_wait_seconds):
            return "waiting"
        _finish(
            rollout,
            RolloutStatus.stopped,
            f"no passing evidence at {percent}% traffic within {rollout.max_wait_seconds}s: "
            + "; ".join(waiting),
        )
        session.add(rollout)
        bundles.bundle_changed(session, bundle.name)
        return "timed-out"
    rollout.step += 1
    rollout.step_started_at = utcnow()
    if rollout.steps[rollout.step] < 100:
        session.add(rollout)
        bundles.bundle_changed(session, bundle.name)
        return "advanced"
    return _promote(session, rollout, bundle)


def _promote(session: Session, rollout: Rollout, bundle: Bundle) -> str:
    """Promote through the normal gate; a refused promotion stops the rollout with the reason."""
    rollout.status = RolloutStatus.promoted.value  # first: the promotion archives the baseline it serves
    session.add(rollout)
    session.flush()
    try:
        with session.begin_nested():
            lifecycle.transition_version(
                session=session,
                bundle_name=bundle.name,
                number=rollout.version,
                to=Stage.production,
                reason=f"guarded rollout {rollout.id} passed every step",
                actor=SYSTEM,
                traffic=TRAFFIC,
            )
    except ChatverError as exc:
        rollout.step -= 1  # it never served 100%
        _finish(rollout, RolloutStatus.stopped, f"promotion refused: {exc.detail}")
        session.add(rollout)
        bundles.bundle_changed(session, bundle.name)
        return "stopped"
    _finish(rollout, RolloutStatus.promoted, "promoted after passing every step")
    session.add(rollout)
    return "promoted"


def list_rollouts(*, session: Session, bundle: Bundle) -> list[Rollout]:
    """The bundle's rollouts, newest first."""
    return repository.list_for_bundle(session, bundle.id or 0)


def stop_rollout(*, session: Session, rollout_id: str, body: RolloutStop, actor: Principal) -> Rollout:
    """Stop by hand: traffic returns to production, the candidate stays where it is."""
    rollout = repository.lock(session, rollout_id)
    if rollout is None:
        raise NotFound(f"no rollout {rollout_id!r}", type_="unknown-rollout")
    if rollout.status != RolloutStatus.running.value:
        raise Conflict(f"rollout {rollout.id} is {rollout.status}", type_="rollout-finished")
    _finish(rollout, RolloutStatus.stopped, f"stopped by {actor.name}: {body.reason}")
    session.add(rollout)
    bundle = session.get(Bundle, rollout.bundle_id)
    assert bundle is not None
    bundles.bundle_changed(session, bundle.name)
    return rollout


def rollout_public(session: Session, rollout: Rollout) -> RolloutPublic:
    bundle = session.get(Bundle, rollout.bundle_id)
    assert bundle is not None
    evidence = step_evidence(session, rollout, bundle)
    waiting = evidence.waiting_for(rollout) if rollout.status == RolloutStatus.running.value else []
    if rollout.status != RolloutStatus.running.value:
        state = rollout.status
    elif not waiting:
        state = "ready"
    elif any(c.status == "insufficient-data" for c in evidence.checks) or (
        evidence.candidate.requests < rollout.min_requests_per_step
    ):
        state = "waiting-for-data"
    else:
        state = "waiting-for-evidence"
    return RolloutPublic(
        id=rollout.id,
        bundle=bundle.name,
        version_id=bundles.version_id(bundle.name, rollout.version),
        baseline_version_id=bundles.version_id(bundle.name, rollout.baseline),
        status=rollout.status,
        state=state,
        waiting_for=waiting,
        steps=rollout.steps,
        step=rollout.step,
        percent=rollout.steps[min(rollout.step, len(rollout.steps) - 1)],
        min_requests_per_step=rollout.min_requests_per_step,
        max_wait_seconds=rollout.max_wait_seconds,
        guardrails=[
            RolloutGuardrailPublic(
                metric=c.metric,
                max_regression=c.max_regression,
                status=c.status,
                regression=c.regression,
                bound=c.bound,
                upper=c.upper,
                alpha=c.alpha,
            )
            for c in evidence.checks
        ],
        requests={"candidate": evidence.candidate.requests, "baseline": evidence.baseline.requests},
        subjects={"candidate": evidence.candidate.units, "baseline": evidence.baseline.units},
        reason=rollout.reason,
        created_by=rollout.created_by,
        created_at=rfc3339(rollout.created_at),
        step_started_at=rfc3339(rollout.step_started_at),
        finished_at=rfc3339(rollout.finished_at) if rollout.finished_at else None,
    )


def scope_arms(session: Session, scope_id: str) -> ExperimentArms | None:
    """What reported events are checked against, for an experiment or a guarded rollout (installed
    as the events domain's lookup)."""
    if not scope_id.startswith("ro_"):
        return experiments_service.experiment_arms(session, scope_id)
    rollout = repository.get(session, scope_id)
    if rollout is None:
        return None
    seed, steps = rollout.id, list(rollout.steps)

    def assign(subject: str, step: int) -> str:
        arms = ramp_arms(float(steps[step]))
        return arms[assign_arm(arms=arms, seed=seed, subject=subject)[0]].name

    return ExperimentArms(
        bundle_id=rollout.bundle_id,
        versions=frozenset({rollout.version, rollout.baseline}),
        arm_of_version={rollout.version: "candidate", rollout.baseline: "baseline"},
        assign=assign,
        steps=len(steps),
        current_step=rollout.step,
    )
