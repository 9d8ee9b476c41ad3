"""Rules of experiments: valid arms, one running per bundle, promotion of the winner."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.bundles import repository as bundles_repo
from app.bundles import service as bundles
from app.bundles.models import Bundle, Stage
from app.bundles.traffic import Splitting, Traffic
from app.dbtypes import utcnow
from app.errors import Conflict, Forbidden, NotFound, invalid
from app.events import subject_repository as subjects
from app.events.service import ExperimentArms
from app.experiments import repository
from app.experiments.assignment import Arm, assign_arm
from app.experiments.models import Experiment, ExperimentStatus
from app.experiments.schemas import ExperimentCreate, ExperimentStop
from app.lifecycle import service as lifecycle

MIN_ARM_SHARE = 0.01  # an arm with less traffic than this could never gather evidence
NOTHING = Splitting()
SERVABLE = {Stage.staging.value, Stage.validation.value, Stage.production.value}


def new_experiment_id() -> str:
    return "exp_" + secrets.token_hex(8)


def _check_arms(session: Session, bundle: Bundle, body: ExperimentCreate) -> None:
    names = [arm.name for arm in body.arms]
    if len(set(names)) != len(names):
        raise invalid("arms", "arm names must be unique")
    total = sum(arm.weight for arm in body.arms)
    for index, arm in enumerate(body.arms):
        if arm.weight / total < MIN_ARM_SHARE:
            raise invalid(
                f"arms.{index}.weight",
                f"gives {arm.name!r} {arm.weight / total:.2%} of traffic; every arm needs at least 1%",
            )
    numbers = [arm.version for arm in body.arms]
    if len(set(numbers)) != len(numbers):
        raise invalid("arms", "each arm must serve a different version")
    for index, arm in enumerate(body.arms):
        try:
            version = bundles.get_version(session=session, bundle=bundle, selector=arm.version)
        except NotFound:
            raise invalid(
                f"arms.{index}.version", f"no version {bundles.version_id(bundle.name, arm.version)}"
            ) from None
        if version.stage not in SERVABLE:
            raise invalid(
                f"arms.{index}.version",
                f"{bundles.version_id(bundle.name, arm.version)} is {version.stage}; arms need staging, "
                "validation or production versions",
            )


def create_experiment(
    *, session: Session, bundle_name: str, body: ExperimentCreate, actor: Principal
) -> Experiment:
    """A draft experiment over versions of one bundle; the first arm is the control."""
    bundle = bundles.lock_bundle(session=session, name=bundle_name)
    _check_arms(session, bundle, body)
    experiment_id = new_experiment_id()
    experiment = Experiment(
        id=experiment_id,
        bundle_id=bundle.id or 0,
        name=body.name,
        arms=[arm.model_dump() for arm in body.arms],
        primary_metric=body.primary_metric,
        guardrails=[g.model_dump() for g in body.guardrails],
        seed=body.seed or experiment_id,
        created_by=actor.name,
    )
    repository.add(session, experiment)
    return experiment


def experiment_arms(session: Session, experiment_id: str) -> ExperimentArms | None:
    """What the events domain checks reported events against (see app.events.service)."""
    experiment = repository.get(session, experiment_id)
    if experiment is None:
        return None
    arms = tuple(Arm(str(arm["name"]), float(arm["weight"])) for arm in experiment.arms)
    seed = experiment.seed

    def assign(subject: str, _step: int = 0) -> str:
        return arms[assign_arm(arms=arms, seed=seed, subject=subject)[0]].name

    return ExperimentArms(
        bundle_id=experiment.bundle_id,
        versions=frozenset(int(arm["version"]) for arm in experiment.arms),
        arm_of_version={int(arm["version"]): str(arm["name"]) for arm in experiment.arms},
        assign=assign,
    )


def get_experiment(*, session: Session, experiment_id: str) -> Experiment:
    experiment = repository.get(session, experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id!r}", type_="unknown-experiment")
    return experiment


def _locked(session: Session, experiment_id: str) -> tuple[Experiment, Bundle]:
    experiment = get_experiment(session=session, experiment_id=experiment_id)
    bundle = session.get(Bundle, experiment.bundle_id)
    assert bundle is not None
    bundle = bundles.lock_bundle(session=session, name=bundle.name)
    locked = repository.lock(session, experiment_id)
    assert locked is not None
    return locked, bundle


def start_experiment(*, session: Session, experiment_id: str, traffic: Traffic) -> Experiment:
    """Start (or resume) traffic splitting; 409 when another experiment of the bundle runs."""
    experiment, bundle = _locked(session, experiment_id)
    if experiment.status == ExperimentStatus.running.value:
        return experiment
    if experiment.status == ExperimentStatus.stopped.value:
        raise Conflict(f"experiment {experiment.id} is stopped; create a new one", type_="experiment-stopped")
    if traffic.running(session, [bundle.id or 0]).get(bundle.id or 0, NOTHING).rollout is not None:
        raise Conflict(
            f"a guarded rollout is running on {bundle.name}; wait for it to finish", type_="rollout-running"
        )
    running = repository.running_for_bundle(session, bundle.id or 0)
    if running is not None:
        raise Conflict(
            f"experiment {running.id} is already running on {bundle.name}; stop or pause it first",
            type_="experiment-running",
        )
    for arm in experiment.arms:
        version = bundles.get_version(session=session, bundle=bundle, selector=int(arm["version"]))
        if version.stage not in SERVABLE:
            raise Conflict(
                f"arm {arm['name']} serves {bundles.version_id(bundle.name, version.number)}, which is now "
                f"{version.stage}",
                type_="arm-not-servable",
            )
    if experiment.started_at is None:
        production = bundles_repo.production_version(session, bundle.id or 0)
        if production is not None:  # the subjects' history on production is the CUPED pre-period
            subjects.copy_pre_period(
                session,
                experiment_id=experiment.id,
                version_id=bundles.version_id(bundle.name, production.number),
            )
        experiment.started_at = utcnow()
    experiment.status = ExperimentStatus.running.value
    session.add(experiment)
    session.flush()
    bundles.bundle_changed(session, bundle.name)
    return experiment


def pause_experiment(*, session: Session, experiment_id: str) -> Experiment:
    """Pause: traffic goes back to production until the experiment is started again."""
    experiment, bundle = _locked(session, experiment_id)
    if experiment.status != ExperimentStatus.running.value:
        raise Conflict(f"experiment {experiment.id} is {experiment.status}, not running", type_="not-running")
    experiment.status = ExperimentStatus.paused.value
    session.add(experiment)
    bundles.bundle_changed(session, bundle.name)
    return experiment


def stop_experiment(
    *, session: Session, experiment_id: str, body: ExperimentStop, actor: Principal, traffic: Traffic
) -> Experiment:
    """Stop for good; with ``promote`` the winner goes to production through the normal gate."""
    experiment, bundle = _locked(session, experiment_id)
    if experiment.status == ExperimentStatus.stopped.value:
        raise Conflict(f"experiment {experiment.id} is already stopped", type_="experiment-stopped")
    arms = {arm["name"]: int(arm["version"]) for arm in experiment.arms}
    if body.winner is not None and body.winner not in arms:
        raise invalid("winner", f"no arm named {body.winner!r}; arms are {', '.join(arms)}")
    if body.promote:
        if body.winner is None:
            raise invalid("winner", "name the winning arm to promote it")
        if not actor.has(Role.approver):
            raise Forbidden(
                f"promoting the winner needs the approver role; key {actor.name!r} is {actor.role.name}"
            )
    experiment.status = ExperimentStatus.stopped.value
    experiment.stopped_at = utcnow()
    experiment.winner = body.winner
    experiment.stop_reason = body.reason
    session.add(experiment)
    session.flush()  # stopped first: promoting the winner archives the control, an arm of this experiment
    if body.promote and body.winner is not None:
        version = bundles.get_version(session=session, bundle=bundle, selector=arms[body.winner])
        if version.stage != Stage.production.value:
            lifecycle.transition_version(
                session=session,
                bundle_name=bundle.name,
                number=version.number,
                to=Stage.production,
                reason=body.reason or f"winner of experiment {experiment.id}",
                actor=actor,
                traffic=traffic,
            )
    bundles.bundle_changed(session, bundle.name)
    return experiment


def list_experiments(*, session: Session, bundle: Bundle) -> list[Experiment]:
    return repository.list_for_bundle(session, bundle.id or 0)
