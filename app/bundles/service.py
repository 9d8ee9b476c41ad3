"""Rules of the registry: bundles, content-addressed versions, evaluations, diff and compare."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth.service import Principal
from app.bundles import repository
from app.bundles.digest import config_digest, normalized_config
from app.bundles.models import Bundle, Evaluation, Stage, Version
from app.bundles.providers import known_providers, provider_of
from app.bundles.schemas import (
    MAX_VERSION_NUMBER,
    BundleCreate,
    BundleUpdate,
    EvaluationCreate,
    VersionCreate,
    normalize_semver,
)
from app.bundles.secrets import find_secret
from app.bundles.templating import check_template, render_template
from app.bundles.variables import resolve_values
from app.changes import Change
from app.db import announce
from app.dbtypes import utcnow
from app.errors import Conflict, NotFound, invalid
from app.settings import Settings, origin_of

BUNDLE_TOPIC = "bundle"


def version_id(bundle_name: str, number: int) -> str:
    return f"{bundle_name}@{number}"


def bundle_changed(session: Session, bundle_name: str) -> None:
    """Announce (after commit) that what serves this bundle may have changed."""
    announce(session, Change(BUNDLE_TOPIC, bundle_name))


# --- bundles -------------------------------------------------------------------------------


def create_bundle(*, session: Session, body: BundleCreate) -> Bundle:
    """Create a bundle; 409 when the name is taken."""
    if repository.get_bundle(session, body.name) is not None:
        raise Conflict(f"bundle {body.name!r} already exists", type_="bundle-exists")
    bundle = Bundle(name=body.name, description=body.description)
    try:
        with session.begin_nested():
            repository.add(session, bundle)
    except IntegrityError:
        raise Conflict(f"bundle {body.name!r} already exists", type_="bundle-exists") from None
    bundle_changed(session, bundle.name)  # replicas may have cached "no such bundle"
    return bundle


def get_bundle(*, session: Session, name: str) -> Bundle:
    bundle = repository.get_bundle(session, name)
    if bundle is None:
        raise NotFound(f"no bundle named {name!r}", type_="unknown-bundle")
    return bundle


def bundle_by_id(*, session: Session, bundle_id: int) -> Bundle:
    bundle = repository.get_bundle_by_id(session, bundle_id)
    if bundle is None:
        raise NotFound(f"no bundle with id {bundle_id}", type_="unknown-bundle")
    return bundle


def lock_bundle(*, session: Session, name: str) -> Bundle:
    """The bundle, locked for the rest of the transaction: writes to one bundle are serialized."""
    bundle = repository.lock_bundle(session, name)
    if bundle is None:
        raise NotFound(f"no bundle named {name!r}", type_="unknown-bundle")
    return bundle


def update_bundle(*, session: Session, name: str, body: BundleUpdate) -> Bundle:
    bundle = lock_bundle(session=session, name=name)
    if body.description is not None:
        bundle.description = body.description
    if body.required_approvals is not None:
        bundle.required_approvals = body.required_approvals
    bundle.updated_at = utcnow()
    session.add(bundle)
    return bundle


def list_bundles(*, session: Session) -> list[Bundle]:
    return repository.list_bundles(session)


def production_numbers(*, session: Session, bundles: list[Bundle]) -> dict[int, int]:
    return repository.production_numbers(session, [b.id for b in bundles if b.id is not None])


# --- versions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    version: Version
    created: bool


# Providers whose default endpoint is a local server: without an explicit, allow-listed
# api_base they would call whatever listens on this machine's default port.
SELF_HOSTED_PROVIDERS = frozenset(
    {
        "ollama",
        "ollama_chat",
        "vllm",
        "hosted_vllm",
        "lm_studio",
        "llamafile",
        "xinference",
        "oobabooga",
        "triton",
    }
)


def _check_params(params: Mapping[str, Any], settings: Settings, provider: str) -> None:
    api_base = params.get("api_base")
    if api_base is None and provider in SELF_HOSTED_PROVIDERS:
        raise invalid(
            "params.api_base",
            f"{provider} runs where you host it: set an api_base allowed by CHATVER_ALLOWED_API_BASES",
        )
    if api_base is not None:
        try:
            origin = origin_of(api_base)
        except ValueError:
            raise invalid("params.api_base", "must be an http(s) URL") from None
        if origin not in settings.allowed_api_base_set:
            raise invalid(
                "params.api_base",
                f"origin {origin} is not in CHATVER_ALLOWED_API_BASES",
            )
    if "mock_response" in params and not settings.allow_mock_responses:
        raise invalid("params.mock_response", "mock responses are disabled (CHATVER_ALLOW_MOCK_RESPONSES)")


def _check_model(body: VersionCreate) -> str:
    try:
        provider = provider_of(body.model)
    except ValueError as exc:
        raise invalid("model", str(exc)) from None
    if body.checkpoint is not None and body.checkpoint.base_model is not None:
        try:
            base_provider = provider_of(body.checkpoint.base_model)
        except ValueError as exc:
            raise invalid("checkpoint.base_model", str(exc)) from None
        if base_provider != provider:
            raise invalid(
                "checkpoint.base_model",
                f"is on provider {base_provider!r} but model is on {provider!r}; they must match",
            )
    if body.checkpoint is not None:
        ref_provider, slash, _ = body.checkpoint.ref.partition("/")
        if slash and ref_provider in known_providers() and ref_provider != provider:
            raise invalid("checkpoint.ref", f"names provider {ref_provider!r} but model is on {provider!r}")
    return provider


def build_config(*, body: VersionCreate, settings: Settings) -> dict[str, Any]:
    """Validate a version's config and return it normalized (the digest's input)."""
    provider = _check_model(body)
    config = normalized_config(body)
    _check_params(config["params"], settings, provider)
    check_template(source=body.system_prompt, declared=config["variables"].keys())
    leaked = find_secret(
        {**config, "lineage": body.lineage, "message": body.message, "metrics": body.metrics}
    )
    if leaked is not None:
        raise invalid(
            leaked,
            "looks like a provider credential; keys belong in the server's environment, never in a bundle",
        )
    return config


def check_version(*, session: Session, bundle_name: str, body: VersionCreate, settings: Settings) -> str:
    """Everything ``publish_version`` would refuse, refused the same way, writing nothing; the digest.

    The bundle need not exist yet (a batch checks every bundle before creating any)."""
    config = build_config(body=body, settings=settings)
    digest = config_digest(config)
    bundle = repository.get_bundle(session, bundle_name)
    if bundle is None:
        if body.parent is not None:
            raise invalid("parent", f"{version_id(bundle_name, body.parent)} does not exist")
        return digest
    if repository.get_version_by_digest(session, _id(bundle), digest) is not None:
        return digest
    if body.parent is not None and repository.get_version(session, _id(bundle), body.parent) is None:
        raise invalid("parent", f"{version_id(bundle.name, body.parent)} does not exist")
    if body.semver is not None and repository.get_version_by_semver(session, _id(bundle), body.semver):
        raise Conflict(
            f"semver {body.semver} is already used by another version of {bundle.name}", type_="semver-taken"
        )
    return digest


def publish_version(
    *, session: Session, bundle_name: str, body: VersionCreate, author: Principal, settings: Settings
) -> Published:
    """Store a new immutable version, or return the existing one with the same digest."""
    bundle = lock_bundle(session=session, name=bundle_name)
    config = build_config(body=body, settings=settings)
    digest = config_digest(config)
    existing = repository.get_version_by_digest(session, _id(bundle), digest)
    if existing is not None:
        return Published(existing, created=False)
    if body.parent is not None and repository.get_version(session, _id(bundle), body.parent) is None:
        raise invalid("parent", f"{version_id(bundle.name, body.parent)} does not exist")
    if body.semver is not None and repository.get_version_by_semver(session, _id(bundle), body.semver):
        raise Conflict(
            f"semver {body.semver} is already used by another version of {bundle.name}",
            type_="semver-taken",
            errors=None,
        )
    if bundle.last_number >= MAX_VERSION_NUMBER:
        raise Conflict(f"bundle {bundle.name} has run out of version numbers")
    bundle.last_number += 1
    bundle.updated_at = utcnow()
    version = Version(
        bundle_id=_id(bundle),
        number=bundle.last_number,
        digest=digest,
        stage=Stage.draft.value,
        semver=body.semver,
        message=body.message,
        parent=body.parent,
        lineage=body.lineage,
        metrics=dict(body.metrics),
        author=author.name,
        author_key_id=author.key_id,
        **config,
    )
    session.add(bundle)
    repository.add(session, version)
    bundle_changed(session, bundle.name)  # replicas may have cached "no such version"
    return Published(version, created=True)


def parse_version_selector(selector: str) -> int | str:
    """ "4" → 4; "@1.3.0" or "@v1.3.0" → "1.3.0"; 422 otherwise."""
    if selector.startswith("@"):
        try:
            return normalize_semver(selector[1:])
        except ValueError as exc:
            raise invalid("number", f"{selector!r}: semver {exc}") from None
    if selector.isascii() and selector.isdigit() and len(selector) <= 10:
        number = int(selector)
        if 1 <= number <= MAX_VERSION_NUMBER:
            return number
    raise invalid("number", f"{selector!r} is not a version number or @semver")


def get_version(*, session: Session, bundle: Bundle, selector: int | str) -> Version:
    """A version by number or by semver; 404 when there is none."""
    if isinstance(selector, int):
        version = repository.get_version(session, _id(bundle), selector)
        label = version_id(bundle.name, selector)
    else:
        version = repository.get_version_by_semver(session, _id(bundle), selector)
        label = f"{bundle.name}@{selector}"
    if version is None:
        raise NotFound(f"no version {label}", type_="unknown-version")
    return version


def list_versions(*, session: Session, bundle: Bundle, stage: Stage | None) -> list[Version]:
    return repository.list_versions(session, _id(bundle), stage)


def add_evaluation(
    *, session: Session, version: Version, body: EvaluationCreate, author: Principal
) -> Evaluation:
    """Append an evaluation result; earlier ones are kept."""
    evaluation = Evaluation(
        version_pk=_id(version), metrics=dict(body.metrics), dataset=body.dataset, author=author.name
    )
    repository.add(session, evaluation)
    return evaluation


def evaluations_of(*, session: Session, versions: list[Version]) -> dict[int, list[Evaluation]]:
    by_version: dict[int, list[Evaluation]] = {_id(v): [] for v in versions}
    for evaluation in repository.list_evaluations(session, list(by_version)):
        by_version[evaluation.version_pk].append(evaluation)
    return by_version


def latest_metrics(version: Version, evaluations: list[Evaluation]) -> dict[str, float]:
    """Latest value per metric: the published metrics, overridden by later evaluations."""
    metrics: dict[str, float] = dict(version.metrics)
    for evaluation in sorted(evaluations, key=lambda e: e.id or 0):
        metrics.update(evaluation.metrics)
    return metrics


def render_system_prompt(version: Version, provided: Mapping[str, Any]) -> str:
    """The version's system prompt rendered in the sandbox with these values (as ``/render`` does)."""
    values = resolve_values(variables=version.variables, provided=provided)
    return render_template(source=version.system_prompt, values=values)


def _id(row: Bundle | Version) -> int:
    if row.id is None:  # rows reach the service from the database, so this is a bug
        raise RuntimeError(f"{type(row).__name__} has no primary key yet")
    return row.id
