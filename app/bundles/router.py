"""/api/bundles: bundles, versions, evaluations and diff (compare, with live metrics, is in app.events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlmodel import Session

from app.auth.deps import ApproverKey, EditorKey, RuntimeKey
from app.bundles import comparison, service
from app.bundles.models import Bundle, Evaluation, Stage, Version
from app.bundles.schemas import (
    BUNDLE_NAME,
    MAX_VERSION_NUMBER,
    BundleCreate,
    BundlePublic,
    BundleUpdate,
    DiffPublic,
    EvaluationCreate,
    EvaluationPublic,
    FieldChange,
    VersionCreate,
    VersionPublic,
)
from app.bundles.traffic import Splitting, Traffic, TrafficDep
from app.db import SessionDep, WriteDep
from app.dbtypes import rfc3339
from app.settings import Settings

router = APIRouter(prefix="/api/bundles", tags=["bundles"])

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME, description="bundle name")]
VersionSelector = Annotated[str, Path(max_length=80, description="version number, or @semver")]
VersionNumber = Annotated[int, Query(ge=1, le=MAX_VERSION_NUMBER)]


def bundle_public(bundle: Bundle, production: int | None, splitting: Splitting | None) -> BundlePublic:
    return BundlePublic(
        name=bundle.name,
        description=bundle.description,
        production=service.version_id(bundle.name, production) if production else None,
        experiment=splitting.experiment if splitting else None,
        rollout=splitting.rollout if splitting else None,
        required_approvals=bundle.required_approvals,
        versions=bundle.last_number,
        created_at=rfc3339(bundle.created_at),
        updated_at=rfc3339(bundle.updated_at),
    )


def evaluation_public(bundle_name: str, version: Version, evaluation: Evaluation) -> EvaluationPublic:
    return EvaluationPublic(
        id=evaluation.id or 0,
        version_id=service.version_id(bundle_name, version.number),
        metrics=evaluation.metrics,
        dataset=evaluation.dataset,
        author=evaluation.author,
        created_at=rfc3339(evaluation.created_at),
    )


def version_public(
    bundle_name: str, version: Version, evaluations: list[Evaluation] | None = None
) -> VersionPublic:
    return VersionPublic(
        bundle=bundle_name,
        number=version.number,
        version_id=service.version_id(bundle_name, version.number),
        digest=version.digest,
        stage=version.stage,
        model=version.model,
        system_prompt=version.system_prompt,
        variables=version.variables,
        checkpoint=version.checkpoint,
        params=version.params,
        semver=version.semver,
        message=version.message,
        parent=version.parent,
        lineage=version.lineage,
        metrics=version.metrics,
        author=version.author,
        created_at=rfc3339(version.created_at),
        evaluations=[evaluation_public(bundle_name, version, e) for e in evaluations or []],
    )


def _one_bundle(session: Session, name: str, traffic: Traffic) -> BundlePublic:
    bundle = service.get_bundle(session=session, name=name)
    production = service.production_numbers(session=session, bundles=[bundle]).get(bundle.id or 0)
    running = traffic.running(session, [bundle.id or 0]).get(bundle.id or 0)
    return bundle_public(bundle, production, running)


@router.post("", status_code=201)
async def create_bundle(body: BundleCreate, uow: WriteDep, _: EditorKey) -> BundlePublic:
    def work(session: Session) -> BundlePublic:
        bundle = service.create_bundle(session=session, body=body)
        return bundle_public(bundle, None, None)

    return await uow.run(work)


@router.get("")
def list_bundles(session: SessionDep, _: RuntimeKey, traffic: TrafficDep) -> list[BundlePublic]:
    bundles = service.list_bundles(session=session)
    production = service.production_numbers(session=session, bundles=bundles)
    running = traffic.running(session, [b.id or 0 for b in bundles])
    return [bundle_public(b, production.get(b.id or 0), running.get(b.id or 0)) for b in bundles]


@router.get("/{name}")
def get_bundle(name: BundleName, session: SessionDep, _: RuntimeKey, traffic: TrafficDep) -> BundlePublic:
    return _one_bundle(session, name, traffic)


@router.patch("/{name}")
async def update_bundle(
    name: BundleName, body: BundleUpdate, uow: WriteDep, _: ApproverKey, traffic: TrafficDep
) -> BundlePublic:
    def work(session: Session) -> BundlePublic:
        service.update_bundle(session=session, name=name, body=body)
        return _one_bundle(session, name, traffic)

    return await uow.run(work)


@router.post("/{name}/versions/check")
def check_version(
    name: BundleName, body: VersionCreate, session: SessionDep, _: EditorKey, request: Request
) -> dict[str, str]:
    """Would this version be published? The same checks as publishing, writing nothing (the bundle
    need not exist yet): 200 with its digest, or the refusal publishing would give."""
    settings: Settings = request.app.state.settings
    return {"digest": service.check_version(session=session, bundle_name=name, body=body, settings=settings)}


@router.post(
    "/{name}/versions", status_code=201, responses={200: {"description": "same config already published"}}
)
async def publish_version(
    name: BundleName,
    body: VersionCreate,
    uow: WriteDep,
    author: EditorKey,
    request: Request,
    response: Response,
) -> VersionPublic:
    """Publish a version; the same config again returns the existing version with 200."""
    settings: Settings = request.app.state.settings

    def work(session: Session) -> tuple[bool, VersionPublic]:
        published = service.publish_version(
            session=session, bundle_name=name, body=body, author=author, settings=settings
        )
        evaluations = service.evaluations_of(session=session, versions=[published.version])
        return published.created, version_public(
            name, published.version, evaluations[published.version.id or 0]
        )

    created, version = await uow.run(work)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/bundles/{name}/versions/{version.number}"
    return version


@router.get("/{name}/versions")
def list_versions(
    name: BundleName, session: SessionDep, _: RuntimeKey, stage: Stage | None = None
) -> list[VersionPublic]:
    bundle = service.get_bundle(session=session, name=name)
    versions = service.list_versions(session=session, bundle=bundle, stage=stage)
    evaluations = service.evaluations_of(session=session, versions=versions)
    return [version_public(name, v, evaluations[v.id or 0]) for v in versions]


@router.get("/{name}/versions/{number}")
def get_version(
    name: BundleName, number: VersionSelector, session: SessionDep, _: RuntimeKey
) -> VersionPublic:
    bundle = service.get_bundle(session=session, name=name)
    version = service.get_version(
        session=session, bundle=bundle, selector=service.parse_version_selector(number)
    )
    evaluations = service.evaluations_of(session=session, versions=[version])
    return version_public(name, version, evaluations[version.id or 0])


@router.post("/{name}/versions/{number}/evaluations", status_code=201)
async def add_evaluation(
    name: BundleName, number: VersionSelector, body: EvaluationCreate, uow: WriteDep, author: EditorKey
) -> EvaluationPublic:
    def work(session: Session) -> EvaluationPublic:
        bundle = service.get_bundle(session=session, name=name)
        selector = service.parse_version_selector(number)
        version = service.get_version(session=session, bundle=bundle, selector=selector)
        evaluation = service.add_evaluation(session=session, version=version, body=body, author=author)
        return evaluation_public(name, version, evaluation)

    return await uow.run(work)


@router.get("/{name}/diff")
def diff_versions(
    name: BundleName,
    session: SessionDep,
    _: RuntimeKey,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION_NUMBER)],
    to: VersionNumber,
) -> DiffPublic:
    bundle = service.get_bundle(session=session, name=name)
    old = service.get_version(session=session, bundle=bundle, selector=from_)
    new = service.get_version(session=session, bundle=bundle, selector=to)
    return DiffPublic(
        from_=service.version_id(name, old.number),
        to=service.version_id(name, new.number),
        changes=[
            FieldChange(field=c["field"], from_=c["from"], to=c["to"])
            for c in comparison.config_changes(old, new)
        ],
        system_prompt_diff=comparison.prompt_diff(old, new, name),
    )
