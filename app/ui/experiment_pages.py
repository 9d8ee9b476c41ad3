"""The console's experiment and rollout pages (live results with charts) and their actions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlmodel import Session

from app.auth.models import Role
from app.bundles import service as bundles
from app.bundles.traffic import TrafficDep
from app.db import WriteDep
from app.errors import validation_error
from app.experiments import results as experiment_results
from app.experiments import service as experiments
from app.experiments.models import Experiment
from app.experiments.schemas import ExperimentResults, ExperimentStop
from app.rollouts import service as rollouts
from app.rollouts.schemas import RolloutPublic, RolloutStop
from app.ui import charts
from app.ui.deps import PostedForm, Viewer, role_of
from app.ui.pages import PREFIX, act, read_page, redirect, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ENDED_STEP = {"running": "current", "rolled-back": "failed", "promoted": "done"}  # else stopped: pending
ExperimentId = Annotated[str, Path(pattern=r"^exp_[0-9a-f]{16}$")]
RolloutId = Annotated[str, Path(pattern=r"^ro_[0-9a-f]{16}$")]


@dataclass
class ExperimentPage:
    experiment: Experiment
    bundle: str
    results: ExperimentResults
    primary_chart: Markup | None
    lift_chart: Markup | None
    split_chart: Markup


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def experiment_page(*, session: Session, experiment_id: str) -> ExperimentPage:
    experiment = experiments.get_experiment(session=session, experiment_id=experiment_id)
    bundle = bundles.bundle_by_id(session=session, bundle_id=experiment.bundle_id)
    body = experiment_results.experiment_results(session=session, experiment=experiment)
    primary = body.primary_metric
    primary_chart = lift_chart = None
    if primary is not None:
        rows = []
        for index, arm in enumerate(body.arms):
            metric = arm.metrics.get(primary) or arm.per_request.get(primary)
            estimate, ci = (metric.mean, metric.ci95) if metric is not None else (None, None)
            low, high = (ci[0], ci[1]) if ci else (None, None)
            rows.append(charts.Interval(arm.name, estimate, low, high, emphasis=index == 0))
        primary_chart = charts.interval_chart(rows, title=f"{primary} per arm (mean, 95% interval)")
        lifts = []
        for arm in body.arms[1:]:
            lift = (arm.vs_control or {}).get(primary)
            interval = lift.lift_ci95_always_valid if lift is not None else None
            lifts.append(
                charts.Interval(
                    arm.name,
                    _finite(lift.lift) if lift is not None else None,
                    interval[0] if interval else None,
                    interval[1] if interval else None,
                    emphasis=bool(lift and lift.significant),
                )
            )
        lift_chart = charts.interval_chart(
            lifts,
            title=f"lift of {primary} vs {body.arms[0].name} (always-valid interval)",
            reference=0.0,
            percent=True,
        )
    assigned = body.srm.assigned
    total = sum(assigned.counts.values())
    split = charts.share_bars(
        [
            charts.Share(name, assigned.expected_share.get(name, 0.0), count / total if total else None)
            for name, count in assigned.counts.items()
        ],
        title="traffic split: subjects in their assigned arm",
    )
    return ExperimentPage(experiment, bundle.name, body, primary_chart, lift_chart, split)


@router.get("/experiments/{experiment_id}")
async def experiment(request: Request, experiment_id: ExperimentId, user: Viewer) -> Response:
    page = await read_page(
        request, lambda session: experiment_page(session=session, experiment_id=experiment_id)
    )
    return render(request, "experiment.html", {"page": page, "Role": Role})


@router.get("/experiments/{experiment_id}/results")
async def experiment_results_fragment(
    request: Request, experiment_id: ExperimentId, user: Viewer
) -> Response:
    """The live part of the experiment page, fetched again every few seconds by the page."""
    page = await read_page(
        request, lambda session: experiment_page(session=session, experiment_id=experiment_id)
    )
    return render(request, "experiment_results.html", {"page": page})


def _experiment_url(experiment_id: str) -> str:
    return f"{PREFIX}/experiments/{experiment_id}"


@router.post("/experiments/{experiment_id}/{action}")
async def experiment_action(
    request: Request,
    experiment_id: ExperimentId,
    action: Annotated[str, Path(pattern=r"^(start|pause|stop)$")],
    user: PostedForm,
    uow: WriteDep,
    traffic: TrafficDep,
    winner: Annotated[str, Form(max_length=64)] = "",
    promote: Annotated[str, Form(max_length=5)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    role_of(user, Role.approver if promote else Role.editor)
    back = _experiment_url(experiment_id)
    try:
        stop = ExperimentStop(winner=winner or None, promote=bool(promote), reason=reason.strip())
    except ValidationError as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in validation_error(exc).errors)
        return redirect(request, back, detail, error=True)

    def work(session: Session) -> None:
        if action == "start":
            experiments.start_experiment(session=session, experiment_id=experiment_id, traffic=traffic)
        elif action == "pause":
            experiments.pause_experiment(session=session, experiment_id=experiment_id)
        else:
            experiments.stop_experiment(
                session=session, experiment_id=experiment_id, body=stop, actor=user.principal, traffic=traffic
            )

    done = {"start": "Experiment started.", "pause": "Experiment paused.", "stop": "Experiment stopped."}
    return await act(request, uow, work, done[action], back)


@dataclass
class RolloutPage:
    rollout: RolloutPublic
    steps_chart: Markup


def rollout_page(*, session: Session, rollout_id: str) -> RolloutPage:
    public = rollouts.rollout_public(session, rollouts.get_rollout(session=session, rollout_id=rollout_id))

    def state(index: int) -> str:
        if index < public.step:
            return "done"
        if index > public.step:
            return "pending"
        # The step it is at, or where it ended: rolled back there, promoted, or stopped before passing.
        return {"running": "current", "rolled-back": "failed", "promoted": "done"}.get(
            public.status, "pending"
        )

    steps = [charts.Step(float(p), state(i)) for i, p in enumerate(public.steps)]
    return RolloutPage(public, charts.step_chart(steps, title="traffic to the candidate, step by step"))


@router.get("/rollouts/{rollout_id}")
async def rollout(request: Request, rollout_id: RolloutId, user: Viewer) -> Response:
    page = await read_page(request, lambda session: rollout_page(session=session, rollout_id=rollout_id))
    return render(request, "rollout.html", {"page": page, "Role": Role})


@router.post("/rollouts/{rollout_id}/stop")
async def stop_rollout(
    request: Request,
    rollout_id: RolloutId,
    user: PostedForm,
    uow: WriteDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    role_of(user, Role.editor)
    back = f"{PREFIX}/rollouts/{rollout_id}"
    if not reason.strip():
        return redirect(request, back, "Stopping a rollout needs a reason.", error=True)

    def work(session: Session) -> None:
        rollouts.stop_rollout(
            session=session,
            rollout_id=rollout_id,
            body=RolloutStop(reason=reason.strip()),
            actor=user.principal,
        )

    return await act(request, uow, work, "Rollout stopped; traffic is back on production.", back)
