"""What the console's registry pages show, assembled from the domain services the API uses."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlmodel import Session

from app.bundles import comparison
from app.bundles import service as bundles
from app.bundles.models import Bundle, Stage, Version
from app.bundles.traffic import Splitting, Traffic
from app.errors import ChatverError
from app.events import service as events
from app.events.schemas import VersionMetrics
from app.experiments import service as experiments
from app.experiments.models import Experiment
from app.lifecycle import service as lifecycle
from app.lifecycle.models import Transition
from app.lifecycle.stages import LEGAL_MOVES
from app.rollouts import service as rollouts
from app.rollouts.models import Rollout
from app.ui import charts

HISTORY_ROWS = 50


@dataclass(frozen=True)
class BundleRow:
    bundle: Bundle
    production: str | None
    splitting: Splitting | None
    waiting: int  # versions in validation that lack approvals
    last_change: Transition | None


def overview(*, session: Session, traffic: Traffic, query: str) -> list[BundleRow]:
    """Every bundle (whose name contains ``query``) with what it serves and its last change."""
    found = [b for b in bundles.list_bundles(session=session) if query.lower() in b.name.lower()]
    production = bundles.production_numbers(session=session, bundles=found)
    running = traffic.running(session, [b.id or 0 for b in found])
    changes = lifecycle.latest_changes(session=session, bundles=found)
    rows = []
    for bundle in found:
        validation = bundles.list_versions(session=session, bundle=bundle, stage=Stage.validation)
        waiting = lifecycle.waiting_for_approval(session=session, bundle=bundle, versions=validation)
        number = production.get(bundle.id or 0)
        rows.append(
            BundleRow(
                bundle=bundle,
                production=bundles.version_id(bundle.name, number) if number else None,
                splitting=running.get(bundle.id or 0),
                waiting=len(waiting),
                last_change=changes.get(bundle.id or 0),
            )
        )
    return rows


@dataclass
class BundlePage:
    bundle: Bundle
    versions: list[Version]
    production: Version | None
    history: list[Transition]
    experiments: list[Experiment]
    rollouts: list[Rollout]
    waiting: dict[int, int]
    rollback_targets: list[int] = field(default_factory=list)  # earlier production versions, newest first


def bundle_page(*, session: Session, name: str) -> BundlePage:
    bundle = bundles.get_bundle(session=session, name=name)
    versions = bundles.list_versions(session=session, bundle=bundle, stage=None)
    versions.sort(key=lambda v: v.number, reverse=True)
    production = next((v for v in versions if v.stage == Stage.production.value), None)
    history = lifecycle.history(session=session, bundle=bundle, limit=HISTORY_ROWS, before_id=None)
    targets = lifecycle.rollback_targets(session=session, bundle=bundle)
    return BundlePage(
        bundle=bundle,
        versions=versions,
        production=production,
        history=history,
        experiments=experiments.list_experiments(session=session, bundle=bundle),
        rollouts=rollouts.list_rollouts(session=session, bundle=bundle),
        waiting=lifecycle.waiting_for_approval(session=session, bundle=bundle, versions=versions),
        rollback_targets=targets,
    )


@dataclass
class VersionPage:
    bundle: Bundle
    version: Version
    version_id: str
    eval_metrics: dict[str, float]
    evaluations: int
    approvals: list[Any]
    metrics: VersionMetrics
    moves: list[str]  # stages an editor may move it to (production is the promotion)
    trends: list[Markup]  # requests, error rate and mean latency per hour, last 24 hours
    rendered: str | None
    render_error: str | None


def version_page(*, session: Session, name: str, number: int, values: dict[str, str] | None) -> VersionPage:
    """One version; with ``values`` its system prompt rendered as ``/render`` would."""
    bundle = bundles.get_bundle(session=session, name=name)
    version = bundles.get_version(session=session, bundle=bundle, selector=number)
    label = bundles.version_id(name, number)
    evaluations = bundles.evaluations_of(session=session, versions=[version])[version.id or 0]
    rendered, render_error = None, None
    if values is not None:
        try:
            rendered = bundles.render_system_prompt(version, values)
        except ChatverError as exc:
            render_error = exc.detail
    return VersionPage(
        bundle=bundle,
        version=version,
        version_id=label,
        eval_metrics=bundles.latest_metrics(version, evaluations),
        evaluations=len(evaluations),
        approvals=lifecycle.list_approvals(session=session, version=version),
        metrics=_live(session, name, version),
        trends=_trends(session, label),
        moves=sorted(s.value for s in LEGAL_MOVES[Stage(version.stage)]),
        rendered=rendered,
        render_error=render_error,
    )


@dataclass(frozen=True)
class DiffRow:
    kind: str  # equal | delete | insert | replace
    left: str | None
    right: str | None
    left_number: int | None
    right_number: int | None


@dataclass
class DiffPage:
    bundle: Bundle
    old: Version
    new: Version
    rows: list[DiffRow]
    changes: list[dict[str, Any]]
    eval_metrics: tuple[dict[str, float], dict[str, float]]
    metrics: tuple[VersionMetrics, VersionMetrics]


def prompt_rows(old: str, new: str) -> list[DiffRow]:
    """Side-by-side lines of two prompts, paired by difflib's opcodes."""
    left, right = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            a = i1 + k if i1 + k < i2 else None
            b = j1 + k if j1 + k < j2 else None
            rows.append(
                DiffRow(
                    kind=tag
                    if tag == "equal" or (a is not None and b is not None)
                    else "delete"
                    if b is None
                    else "insert",
                    left=left[a] if a is not None else None,
                    right=right[b] if b is not None else None,
                    left_number=a + 1 if a is not None else None,
                    right_number=b + 1 if b is not None else None,
                )
            )
    return rows


def diff_page(*, session: Session, name: str, old_number: int, new_number: int) -> DiffPage:
    bundle = bundles.get_bundle(session=session, name=name)
    old = bundles.get_version(session=session, bundle=bundle, selector=old_number)
    new = bundles.get_version(session=session, bundle=bundle, selector=new_number)
    evaluations = bundles.evaluations_of(session=session, versions=[old, new])
    return DiffPage(
        bundle=bundle,
        old=old,
        new=new,
        rows=prompt_rows(old.system_prompt, new.system_prompt),
        changes=[c for c in comparison.config_changes(old, new) if c["field"] != "system_prompt"],
        eval_metrics=(
            bundles.latest_metrics(old, evaluations[old.id or 0]),
            bundles.latest_metrics(new, evaluations[new.id or 0]),
        ),
        metrics=(
            events.version_metrics(
                session=session, version_id=bundles.version_id(name, old.number), since=None
            ),
            events.version_metrics(
                session=session, version_id=bundles.version_id(name, new.number), since=None
            ),
        ),
    )


def _trends(session: Session, label: str) -> list[Markup]:
    trend = events.version_trend(session=session, version_id=label)
    hours = trend.hours
    return [
        charts.sparkline([float(n) for n in trend.requests], title=f"requests per hour, last {hours} h"),
        charts.sparkline(trend.error_rate, title=f"error rate per hour, last {hours} h", percent=True),
        charts.sparkline(trend.latency_ms, title=f"mean latency (ms) per hour, last {hours} h"),
    ]


def _live(session: Session, name: str, version: Version) -> VersionMetrics:
    return events.version_metrics(
        session=session, version_id=bundles.version_id(name, version.number), since=None
    )
