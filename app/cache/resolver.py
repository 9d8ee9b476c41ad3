"""Which version serves a request, answered from memory on the hot path.

Resolved versions are cached per (bundle, selector). A write anywhere in this process
drops the bundle's entries as soon as it commits (through the change feed); entries also
expire after a short TTL, which bounds staleness across replicas that share no Redis.
A generation counter stops a slow reader from caching what it read before a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.bundles import repository
from app.bundles.models import Stage, Version
from app.bundles.providers import effective_model
from app.bundles.service import BUNDLE_TOPIC, version_id
from app.changes import Change, ChangeFeed
from app.db import read_session
from app.errors import NotFound
from app.experiments import repository as experiments_repo
from app.experiments.assignment import Arm, assign_arm
from app.memo import Memo
from app.rollouts import repository as rollouts_repo
from app.rollouts.models import ramp_arms


@dataclass(frozen=True)
class Selector:
    """How a request names a version: a stage's current one, a number, or a semver."""

    stage: Stage | None = None
    number: int | None = None
    semver: str | None = None

    @property
    def key(self) -> str:
        if self.number is not None:
            return f"#{self.number}"
        if self.semver is not None:
            return f"v{self.semver}"
        return f":{(self.stage or Stage.production).value}"


PRODUCTION = Selector(stage=Stage.production)


@dataclass(frozen=True)
class ResolvedVersion:
    """Everything a runtime needs from one version; immutable, safe to share across requests."""

    bundle: str
    number: int
    version_id: str
    digest: str
    stage: str
    model: str
    effective_model: str
    system_prompt: str
    variables: dict[str, Any]
    params: dict[str, Any]
    checkpoint: dict[str, Any] | None

    @classmethod
    def of(cls, bundle: str, version: Version) -> ResolvedVersion:
        ref = (version.checkpoint or {}).get("ref")
        return cls(
            bundle=bundle,
            number=version.number,
            version_id=version_id(bundle, version.number),
            digest=version.digest,
            stage=version.stage,
            model=version.model,
            effective_model=effective_model(version.model, ref),
            system_prompt=version.system_prompt,
            variables=version.variables,
            params=version.params,
            checkpoint=version.checkpoint,
        )


@dataclass(frozen=True)
class _Miss:
    """A cached negative answer: why nothing resolved (a fresh NotFound is raised each time)."""

    detail: str
    type_: str


def _lookup(session: Session, bundle_name: str, selector: Selector) -> ResolvedVersion | _Miss:
    bundle = repository.get_bundle(session, bundle_name)
    if bundle is None or bundle.id is None:
        return _Miss(f"no bundle named {bundle_name!r}", "unknown-bundle")
    if selector.number is not None:
        version = repository.get_version(session, bundle.id, selector.number)
        missing = f"no version {version_id(bundle_name, selector.number)}"
    elif selector.semver is not None:
        version = repository.get_version_by_semver(session, bundle.id, selector.semver)
        missing = f"no version {bundle_name}@{selector.semver}"
    else:
        stage = selector.stage or Stage.production
        version = repository.newest_in_stage(session, bundle.id, stage)
        missing = f"{bundle_name} has no version in {stage.value}"
        if version is None:
            return _Miss(missing, "no-active-version")
    if version is None:
        return _Miss(missing, "unknown-version")
    return ResolvedVersion.of(bundle_name, version)


@dataclass(frozen=True)
class RunningExperiment:
    """A running experiment as the hot path needs it: seed, weighted arms and their versions."""

    id: str
    seed: str
    arms: tuple[Arm, ...]
    versions: tuple[ResolvedVersion, ...]
    step: int | None = None  # a guarded rollout's traffic step; None for an experiment


@dataclass(frozen=True)
class Served:
    """The version that serves one request, and the experiment arm that chose it, if any."""

    version: ResolvedVersion
    experiment_id: str | None = None  # the experiment's id, or the rollout's
    arm: str | None = None
    sticky: bool = True
    step: int | None = None  # set when a guarded rollout chose the version
    percent: float | None = None  # the rollout's share of traffic for the candidate

    @property
    def experiment(self) -> dict[str, str] | None:
        if self.experiment_id is None or self.arm is None or self.step is not None:
            return None
        return {"id": self.experiment_id, "arm": self.arm}

    @property
    def rollout(self) -> dict[str, Any] | None:
        if self.experiment_id is None or self.arm is None or self.step is None:
            return None
        return {"id": self.experiment_id, "arm": self.arm, "step": self.step, "percent": self.percent}


@dataclass(frozen=True)
class ServingPlan:
    """What serves a bundle's default traffic: production, or the arms of a running experiment."""

    production: ResolvedVersion | _Miss
    experiment: RunningExperiment | None


def serving_plan(session: Session, bundle_name: str) -> ServingPlan:
    bundle = repository.get_bundle(session, bundle_name)
    if bundle is None or bundle.id is None:
        return ServingPlan(_Miss(f"no bundle named {bundle_name!r}", "unknown-bundle"), None)
    version = repository.production_version(session, bundle.id)
    production = (
        ResolvedVersion.of(bundle_name, version)
        if version is not None
        else _Miss(f"{bundle_name} has no version in production", "no-active-version")
    )
    experiment = _running_experiment(session, bundle_name, bundle.id) or _running_rollout(
        session, bundle_name, bundle.id
    )
    return ServingPlan(production, experiment)


def _running_rollout(session: Session, bundle_name: str, bundle_id: int) -> RunningExperiment | None:
    """A guarded rollout splits traffic like a two-arm experiment whose weights follow the ramp."""
    rollout = rollouts_repo.running(session, bundle_id)
    if rollout is None:
        return None
    candidate = repository.get_version(session, bundle_id, rollout.version)
    baseline = repository.get_version(session, bundle_id, rollout.baseline)
    if candidate is None or baseline is None:  # pragma: no cover - validated at creation
        return None
    return RunningExperiment(
        id=rollout.id,
        seed=rollout.id,
        arms=ramp_arms(float(rollout.steps[rollout.step])),
        versions=(ResolvedVersion.of(bundle_name, candidate), ResolvedVersion.of(bundle_name, baseline)),
        step=rollout.step,
    )


def _running_experiment(session: Session, bundle_name: str, bundle_id: int) -> RunningExperiment | None:
    experiment = experiments_repo.running_for_bundle(session, bundle_id)
    if experiment is None:
        return None
    versions: list[ResolvedVersion] = []
    for arm in experiment.arms:
        version = repository.get_version(session, bundle_id, int(arm["version"]))
        if version is None:  # pragma: no cover - arms are validated against existing versions
            return None
        versions.append(ResolvedVersion.of(bundle_name, version))
    return RunningExperiment(
        id=experiment.id,
        seed=experiment.seed,
        arms=tuple(Arm(str(arm["name"]), float(arm["weight"])) for arm in experiment.arms),
        versions=tuple(versions),
    )


class ActiveResolver:
    """Resolves (bundle, selector) to a version, from memory when it can."""

    def __init__(self, engine: Engine, feed: ChangeFeed, ttl: float) -> None:
        self._engine = engine
        self._memo: Memo[tuple[str, Selector], ResolvedVersion | _Miss] = Memo(self._load, ttl=ttl)
        self._plans: Memo[str, ServingPlan] = Memo(self._load_plan, ttl=ttl)
        feed.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.topic == BUNDLE_TOPIC:
            self._memo.invalidate(lambda key: key[0] == change.key)
            self._plans.invalidate(lambda key: key == change.key)

    def _load_plan(self, bundle: str) -> ServingPlan:
        with read_session(self._engine) as session:
            return serving_plan(session, bundle)

    async def plan(self, bundle: str) -> ServingPlan:
        """What serves the bundle's default traffic now (the same cached plan ``serve`` reads)."""
        return await self._plans.get(bundle)

    async def serve(self, bundle: str, subject: str | None) -> Served:
        """Who serves ``subject`` now: its arm of a running experiment, else production."""
        plan = await self._plans.get(bundle)
        experiment = plan.experiment
        if experiment is not None:
            index, sticky = assign_arm(arms=experiment.arms, seed=experiment.seed, subject=subject)
            percent = experiment.arms[0].weight if experiment.step is not None else None
            return Served(
                experiment.versions[index],
                experiment.id,
                experiment.arms[index].name,
                sticky,
                step=experiment.step,
                percent=percent,
            )
        if isinstance(plan.production, _Miss):
            raise NotFound(plan.production.detail, type_=plan.production.type_)
        return Served(plan.production)

    def _load(self, key: tuple[str, Selector]) -> ResolvedVersion | _Miss:
        with read_session(self._engine) as session:
            return _lookup(session, *key)

    async def resolve(self, bundle: str, selector: Selector = PRODUCTION) -> ResolvedVersion:
        """The version ``selector`` names now; NotFound when there is none."""
        answer = await self._memo.get((bundle, selector))
        if isinstance(answer, _Miss):
            raise NotFound(answer.detail, type_=answer.type_)
        return answer
