"""Experiments: create, start, pause, stop, and read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlmodel import Session

from app.auth.deps import EditorKey, RuntimeKey
from app.bundles import service as bundles
from app.bundles.models import Bundle
from app.bundles.schemas import BUNDLE_NAME
from app.bundles.traffic import TrafficDep
from app.db import SessionDep, WriteDep
from app.dbtypes import rfc3339
from app.experiments import results, service
from app.experiments.models import Experiment
from app.experiments.schemas import ExperimentCreate, ExperimentPublic, ExperimentResults, ExperimentStop

router = APIRouter(tags=["experiments"])

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME)]
ExperimentId = Annotated[str, Path(pattern=r"^exp_[0-9a-f]{16}$", description="e.g. exp_1a2b3c4d5e6f7a8b")]


def experiment_public(experiment: Experiment, bundle_name: str) -> ExperimentPublic:
    return ExperimentPublic(
        id=experiment.id,
        bundle=bundle_name,
        name=experiment.name,
        status=experiment.status,
        arms=[
            {**arm, "version_id": bundles.version_id(bundle_name, int(arm["version"]))}
            for arm in experiment.arms
        ],
        primary_metric=experiment.primary_metric,
        guardrails=experiment.guardrails,
        seed=experiment.seed,
        created_by=experiment.created_by,
        created_at=rfc3339(experiment.created_at),
        started_at=rfc3339(experiment.started_at) if experiment.started_at else None,
        stopped_at=rfc3339(experiment.stopped_at) if experiment.stopped_at else None,
        winner=experiment.winner,
        stop_reason=experiment.stop_reason,
    )


def _public(session: Session, experiment: Experiment) -> ExperimentPublic:
    bundle = session.get(Bundle, experiment.bundle_id)
    assert bundle is not None
    return experiment_public(experiment, bundle.name)


@router.post("/api/bundles/{name}/experiments", status_code=201)
async def create_experiment(
    name: BundleName, body: ExperimentCreate, uow: WriteDep, actor: EditorKey
) -> ExperimentPublic:
    """A draft A/B test between versions of one bundle; the first arm is the control."""

    def work(session: Session) -> ExperimentPublic:
        experiment = service.create_experiment(session=session, bundle_name=name, body=body, actor=actor)
        return experiment_public(experiment, name)

    return await uow.run(work)


@router.get("/api/bundles/{name}/experiments")
def list_experiments(name: BundleName, session: SessionDep, _: RuntimeKey) -> list[ExperimentPublic]:
    bundle = bundles.get_bundle(session=session, name=name)
    return [experiment_public(e, name) for e in service.list_experiments(session=session, bundle=bundle)]


@router.get("/api/experiments/{experiment_id}")
def get_experiment(experiment_id: ExperimentId, session: SessionDep, _: RuntimeKey) -> ExperimentPublic:
    return _public(session, service.get_experiment(session=session, experiment_id=experiment_id))


@router.post("/api/experiments/{experiment_id}/start")
async def start_experiment(
    experiment_id: ExperimentId, uow: WriteDep, _: EditorKey, traffic: TrafficDep
) -> ExperimentPublic:
    return await uow.run(
        lambda session: _public(
            session, service.start_experiment(session=session, experiment_id=experiment_id, traffic=traffic)
        )
    )


@router.post("/api/experiments/{experiment_id}/pause")
async def pause_experiment(experiment_id: ExperimentId, uow: WriteDep, _: EditorKey) -> ExperimentPublic:
    return await uow.run(
        lambda session: _public(
            session, service.pause_experiment(session=session, experiment_id=experiment_id)
        )
    )


@router.post("/api/experiments/{experiment_id}/stop")
async def stop_experiment(
    experiment_id: ExperimentId,
    uow: WriteDep,
    actor: EditorKey,
    traffic: TrafficDep,
    body: ExperimentStop | None = None,
) -> ExperimentPublic:
    """Stop; ``promote: true`` (approver) sends the winner through the production gate."""
    stop = body or ExperimentStop()

    def work(session: Session) -> ExperimentPublic:
        experiment = service.stop_experiment(
            session=session, experiment_id=experiment_id, body=stop, actor=actor, traffic=traffic
        )
        return _public(session, experiment)

    return await uow.run(work)


@router.get("/api/experiments/{experiment_id}/results")
def experiment_results(experiment_id: ExperimentId, session: SessionDep, _: RuntimeKey) -> ExperimentResults:
    """Per-arm exposure, metrics and lifts with subjects as the unit; SRM, guardrails and a decision."""
    experiment = service.get_experiment(session=session, experiment_id=experiment_id)
    return results.experiment_results(session=session, experiment=experiment)
