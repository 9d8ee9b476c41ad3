"""Rules of guarded rollouts: who may start one, how it ramps, when it promotes or rolls back."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from pydantic import Field, field_validator
from sqlmodel import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.bundles import repository as bundles_repo
from app.bundles import service as bundles
from app.bundles.models import Bundle, Stage
from app.bundles.schemas import MAX_VERSION_NUMBER
from app.dbtypes import utcnow
from app.errors import Conflict, NotFound
from app.events import repository as events_repo
from app.experiments import repository
from app.experiments.guardrails import TESTED_ON, GuardrailCheck, check_guardrail, request_samples
from app.experiments.rollout_models import Rollout, RolloutStatus
from app.experiments.schemas import Guardrail
from app.lifecycle import service as lifecycle
from app.schemas import RequestModel

SYSTEM = Principal("system", "system", Role.admin)


class RolloutCreate(RequestModel):
    version: int = Field(ge=1, le=MAX_VERSION_NUMBER)
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100], min_length=1, max_length=20)
    min_requests_per_step: int = Field(default=200, ge=1, le=1_000_000_000)
    guardrails: list[Guardrail] = Field(min_length=1, max_length=20)

    @field_validator("steps")
    @classmethod
    def _ramp(cls, steps: list[int]) -> list[int]:
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError("each step is a percentage of traffic from 1 to 100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps must increase")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100 (promotion)")
        return steps


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
    if repository.running_for_bundle(session, bundle.id or 0) is not None:
        raise Conflict(
            f"an experiment is running on {bundle.name}; stop it first", type_="experiment-running"
        )
    if repository.running_rollout(session, bundle.id or 0) is not None:
        raise Conflict(f"a rollout is already running on {bundle.name}", type_="rollout-running")
    rollout = Rollout(
        id=new_rollout_id(),
        bundle_id=bundle.id or 0,
        version=version.number,
        baseline=production.number,
        steps=body.steps,
        min_requests_per_step=body.min_requests_per_step,
        guardrails=[g.model_dump() for g in body.guardrails],
        created_by=actor.name,
    )
    repository.add_rollout(session, rollout)
    bundles.bundle_changed(session, bundle.name)
    return rollout


def get_rollout(*, session: Session, rollout_id: str) -> Rollout:
    rollout = repository.get_rollout(session, rollout_id)
    if rollout is None:
        raise NotFound(f"no rollout {rollout_id!r}", type_="unknown-rollout")
    return rollout


def _arm_samples(session: Session, rollout: Rollout, vid: str) -> dict[str, Any]:
    totals = events_repo.experiment_arm_totals(session, rollout.id, vid)
    return {"totals": totals, "samples": request_samples(totals)}


def guardrail_checks(
    session: Session, rollout: Rollout, bundle: Bundle
) -> tuple[list[GuardrailCheck], dict[str, Any]]:
    candidate = _arm_samples(session, rollout, bundles.version_id(bundle.name, rollout.version))
    baseline = _arm_samples(session, rollout, bundles.version_id(bundle.name, rollout.baseline))
    checks = [
        check_guardrail(
            rail["metric"],
            float(rail["max_regression"]),
            baseline["samples"][TESTED_ON[rail["metric"]]],
            candidate["samples"][TESTED_ON[rail["metric"]]],
        )
        for rail in rollout.guardrails
    ]
    return checks, {"candidate": candidate["totals"], "baseline": baseline["totals"]}


def evaluate_rollout(*, session: Session, rollout_id: str) -> str:
    """One controller step: roll back on a significant regression, else advance when the step is full.

    Safe to call after every batch of traffic: guardrails fail only on always-valid evidence.
    Returns what happened: "rolled-back", "advanced", "promoted", "waiting" or "inactive".
    """
    rollout = repository.lock_rollout(session, rollout_id)
    if rollout is None or rollout.status != RolloutStatus.running.value:
        return "inactive"
    bundle = session.get(Bundle, rollout.bundle_id)
    assert bundle is not None
    bundle = bundles.lock_bundle(session=session, name=bundle.name)
    checks, _ = guardrail_checks(session, rollout, bundle)
    failing = [check for check in checks if check.status == "failing"]
    candidate_label = bundles.version_id(bundle.name, rollout.version)
    if failing:
        evidence = "; ".join(check.evidence() for check in failing)
        rollout.status = RolloutStatus.rolled_back.value
        rollout.reason = f"guardrail failed at {rollout.steps[rollout.step]}% traffic: {evidence}"
        rollout.finished_at = utcnow()
        session.add(rollout)
        version = bundles.get_version(session=session, bundle=bundle, selector=rollout.version)
        lifecycle.record_auto_rollback(
            session=session,
            bundle=bundle,
            version=version,
            reason=f"rollout {rollout.id} of {candidate_label}: {rollout.reason}",
        )
        return "rolled-back"
    in_step = events_repo.count_events(
        session, experiment_id=rollout.id, version_id=candidate_label, since=rollout.step_started_at
    )
    if in_step < rollout.min_requests_per_step:
        return "waiting"
    rollout.step += 1
    rollout.step_started_at = utcnow()
    if rollout.steps[rollout.step] >= 100:
        rollout.status = RolloutStatus.promoted.value  # first: the promotion archives the baseline
        session.add(rollout)
        session.flush()
        lifecycle.transition_version(
            session=session,
            bundle_name=bundle.name,
            number=rollout.version,
            to=Stage.production,
            reason=f"guarded rollout {rollout.id} passed every step",
            actor=SYSTEM,
        )
        rollout.status = RolloutStatus.promoted.value
        rollout.finished_at = utcnow()
        rollout.reason = "promoted after passing every step"
        session.add(rollout)
        return "promoted"
    session.add(rollout)
    bundles.bundle_changed(session, bundle.name)
    return "advanced"


def rollout_public(session: Session, rollout: Rollout) -> dict[str, Any]:
    bundle = session.get(Bundle, rollout.bundle_id)
    assert bundle is not None
    checks, totals = guardrail_checks(session, rollout, bundle)
    return {
        "id": rollout.id,
        "bundle": bundle.name,
        "version_id": bundles.version_id(bundle.name, rollout.version),
        "baseline_version_id": bundles.version_id(bundle.name, rollout.baseline),
        "status": rollout.status,
        "steps": rollout.steps,
        "step": rollout.step,
        "percent": rollout.steps[min(rollout.step, len(rollout.steps) - 1)],
        "min_requests_per_step": rollout.min_requests_per_step,
        "guardrails": [
            {
                "metric": c.metric,
                "max_regression": c.max_regression,
                "status": c.status,
                "regression": c.regression,
                "bound": c.bound,
            }
            for c in checks
        ],
        "requests": {
            "candidate": totals["candidate"]["requests"],
            "baseline": totals["baseline"]["requests"],
        },
        "reason": rollout.reason,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at.isoformat().replace("+00:00", "Z"),
        "finished_at": rollout.finished_at.isoformat().replace("+00:00", "Z")
        if rollout.finished_at
        else None,
    }
