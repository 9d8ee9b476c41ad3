"""Rules of the lifecycle: stage moves, the approval gate, promotion and rollback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.auth.models import Role
from app.auth.service import Principal
from app.bundles import repository as bundles_repo
from app.bundles import service as bundles
from app.bundles.models import Bundle, Stage, Version
from app.bundles.traffic import Traffic
from app.errors import Conflict, Forbidden
from app.lifecycle import repository
from app.lifecycle.models import Approval, Transition, TransitionKind
from app.lifecycle.stages import illegal_move_reason, production_stack


class Unset:
    """Marks "expected_production was not sent", as distinct from null (no production yet)."""


UNSET = Unset()


@dataclass(frozen=True)
class Rollback:
    demoted: Version
    restored: Version
    transition: Transition


def _check_not_serving(
    session: Session, bundle: Bundle, version: Version, to: Stage, traffic: Traffic | None
) -> None:
    """A version an experiment or rollout serves cannot leave the servable stages under it."""
    if to in {Stage.staging, Stage.validation, Stage.production} or traffic is None:
        return
    user = traffic.serving(session, bundle.id or 0, version.number)
    if user is not None:
        raise Conflict(
            f"{bundles.version_id(bundle.name, version.number)} serves traffic for {user}; stop it first",
            type_="version-in-use",
        )


def _record(
    session: Session,
    *,
    bundle: Bundle,
    version: Version,
    to: Stage,
    kind: TransitionKind,
    actor: str,
    reason: str,
    traffic: Traffic | None = None,
) -> Transition:
    if kind in {TransitionKind.transition, TransitionKind.promotion}:
        _check_not_serving(session, bundle, version, to, traffic)
    record = Transition(
        bundle_id=bundle.id or 0,
        version_pk=version.id or 0,
        version_id=bundles.version_id(bundle.name, version.number),
        from_stage=version.stage,
        to_stage=to.value,
        kind=kind.value,
        actor=actor,
        reason=reason,
    )
    version.stage = to.value
    session.add(version)
    # Flush each move on its own so the one-production index is never violated in between.
    repository.add(session, record)
    bundles.bundle_changed(session, bundle.name)  # every stage move can change what serves
    return record


def _check_expected_production(bundle: Bundle, current: Version | None, expected: int | Unset | None) -> None:
    if isinstance(expected, Unset):
        return
    actual = current.number if current else None
    if actual != expected:
        shown = bundles.version_id(bundle.name, actual) if actual else "nothing"
        raise Conflict(
            f"expected_production is {expected} but production is now {shown}; reload and retry",
            type_="production-changed",
            extra={"production": shown if actual else None},
        )


def transition_version(
    *,
    session: Session,
    bundle_name: str,
    number: int,
    to: Stage,
    reason: str,
    actor: Principal,
    traffic: Traffic,
    expected_production: int | Unset | None = UNSET,
) -> Transition:
    """Move a version to another stage; to production only through the approval gate."""
    bundle = bundles.lock_bundle(session=session, name=bundle_name)
    version = bundles.get_version(session=session, bundle=bundle, selector=number)
    current = bundles_repo.production_version(session, bundle.id or 0)
    _check_expected_production(bundle, current, expected_production)
    problem = illegal_move_reason(Stage(version.stage), to)
    if problem is not None:
        raise Conflict(f"{bundles.version_id(bundle.name, number)}: {problem}", type_="illegal-transition")
    if to is not Stage.production:
        return _record(
            session,
            bundle=bundle,
            version=version,
            to=to,
            kind=TransitionKind.transition,
            actor=actor.name,
            reason=reason,
            traffic=traffic,
        )
    return _promote(
        session, bundle=bundle, version=version, current=current, actor=actor, reason=reason, traffic=traffic
    )


def _promote(
    session: Session,
    *,
    bundle: Bundle,
    version: Version,
    current: Version | None,
    actor: Principal,
    reason: str,
    traffic: Traffic,
) -> Transition:
    if not actor.has(Role.approver):
        raise Forbidden(
            f"promoting to production needs the approver role; key {actor.name!r} is {actor.role.name}"
        )
    check_approvals(session=session, bundle=bundle, version=version)
    if current is not None:
        _record(
            session,
            bundle=bundle,
            version=current,
            to=Stage.archived,
            kind=TransitionKind.promotion,
            actor=actor.name,
            reason=reason or f"replaced by {bundles.version_id(bundle.name, version.number)}",
            traffic=traffic,
        )
    record = _record(
        session,
        bundle=bundle,
        version=version,
        to=Stage.production,
        kind=TransitionKind.promotion,
        actor=actor.name,
        reason=reason,
        traffic=traffic,
    )
    return record


def check_approvals(*, session: Session, bundle: Bundle, version: Version) -> None:
    """409 unless the version holds enough approvals from keys other than its author."""
    approvals = repository.count_approvals_excluding(session, version.id or 0, version.author_key_id)
    if approvals < bundle.required_approvals:
        raise Conflict(
            f"{bundles.version_id(bundle.name, version.number)} has {approvals} of "
            f"{bundle.required_approvals} required approval(s) from keys other than its author",
            type_="approval-required",
        )


def record_auto_rollback(*, session: Session, bundle: Bundle, version: Version, reason: str) -> Transition:
    """A guarded rollout failed: its version goes back to staging, recorded as an auto-rollback."""
    return _record(
        session,
        bundle=bundle,
        version=version,
        to=Stage.staging,
        kind=TransitionKind.auto_rollback,
        actor="system",
        reason=reason,
    )


def approve_version(
    *, session: Session, bundle_name: str, number: int, comment: str, actor: Principal
) -> Approval:
    """Record one approval per key; the author cannot approve their own version."""
    bundle = bundles.lock_bundle(session=session, name=bundle_name)
    version = bundles.get_version(session=session, bundle=bundle, selector=number)
    label = bundles.version_id(bundle.name, number)
    if version.author_key_id == actor.key_id:
        raise Forbidden(f"{actor.name!r} authored {label} and cannot approve it (four-eyes rule)")
    if version.stage not in {Stage.staging.value, Stage.validation.value}:
        raise Conflict(
            f"{label} is in {version.stage}; only staging or validation versions are approved",
            type_="not-approvable",
        )
    if repository.approval_by(session, version.id or 0, actor.key_id) is not None:
        raise Conflict(f"{actor.name!r} has already approved {label}", type_="already-approved")
    approval = Approval(version_pk=version.id or 0, key_id=actor.key_id, approver=actor.name, comment=comment)
    repository.add(session, approval)
    return approval


def list_approvals(*, session: Session, version: Version) -> list[Approval]:
    return repository.approvals(session, version.id or 0)


def rollback(
    *,
    session: Session,
    bundle_name: str,
    to: int | None,
    reason: str,
    actor: str,
    traffic: Traffic,
    kind: TransitionKind = TransitionKind.rollback,
    expected_production: int | Unset | None = UNSET,
) -> Rollback:
    """Put the previous (or the given) production version back; no approvals needed."""
    bundle = bundles.lock_bundle(session=session, name=bundle_name)
    current = bundles_repo.production_version(session, bundle.id or 0)
    _check_expected_production(bundle, current, expected_production)
    if current is None:
        raise Conflict(f"{bundle.name} has no production version to roll back", type_="nothing-to-roll-back")
    entries = repository.production_entries(session, bundle.id or 0)
    if to is None:
        stack = production_stack((_number(e), e.kind) for e in entries)
        earlier = [n for n in stack if n != current.number]
        if not earlier:
            raise Conflict(
                f"{bundle.name} has no earlier production version to roll back to",
                type_="nothing-to-roll-back",
            )
        to = earlier[-1]
    target = bundles.get_version(session=session, bundle=bundle, selector=to)
    label = bundles.version_id(bundle.name, to)
    if target.id == current.id:
        raise Conflict(f"{label} is already in production", type_="nothing-to-roll-back")
    if not any(e.version_pk == target.id for e in entries):
        raise Conflict(
            f"{label} was never in production; rollback only returns to an earlier production version",
            type_="not-a-previous-production",
        )
    _record(session, bundle=bundle, version=current, to=Stage.archived, kind=kind, actor=actor, reason=reason)
    record = _record(
        session, bundle=bundle, version=target, to=Stage.production, kind=kind, actor=actor, reason=reason
    )
    traffic.stop_all(session, bundle.id or 0, f"rollback: {reason}")
    return Rollback(demoted=current, restored=target, transition=record)


def history(*, session: Session, bundle: Bundle, limit: int, before_id: int | None) -> list[Transition]:
    """Transition records, newest first."""
    return repository.history(session, bundle.id or 0, limit=limit, before_id=before_id)


def _number(entry: Transition) -> int:
    return int(entry.version_id.rsplit("@", 1)[1])


def latest_changes(*, session: Session, bundles: list[Bundle]) -> dict[int, Transition]:
    """The last stage change of each bundle (who, when, why), for overviews."""
    return repository.latest_transitions(session, [b.id for b in bundles if b.id is not None])


def waiting_for_approval(*, session: Session, bundle: Bundle, versions: list[Version]) -> dict[int, int]:
    """Versions in validation that still lack approvals: version number → approvals missing."""
    candidates = [v for v in versions if v.stage == Stage.validation.value and v.id is not None]
    counts = repository.approval_counts(session, [v.id or 0 for v in candidates])
    missing = {v.number: bundle.required_approvals - counts.get(v.id or 0, 0) for v in candidates}
    return {number: gap for number, gap in missing.items() if gap > 0}


def rollback_targets(*, session: Session, bundle: Bundle) -> list[int]:
    """Versions a rollback may return to: every earlier production version, newest first."""
    current = bundles_repo.production_version(session, bundle.id or 0)
    numbers = [_number(e) for e in repository.production_entries(session, bundle.id or 0)]
    earlier = [n for n in dict.fromkeys(reversed(numbers)) if current is None or n != current.number]
    return earlier if current is not None else []


def left_production_at(*, session: Session, bundle: Bundle, version_id: str) -> datetime | None:
    """When this version last stopped being production (None if it never was, or still is)."""
    record = repository.left_production_at(session, bundle.id or 0, version_id)
    return record.at if record is not None else None
