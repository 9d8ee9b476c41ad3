"""Experiment results: per-arm exposure and metrics, lifts against the control, SRM,
guardrails and a plain-words decision (API.md, Experiments → results).

Exposure and outcomes are counted under the version that actually served each request,
never re-derived from the hash, so a runtime serving the wrong arm shows up as SRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.bundles.models import Bundle
from app.bundles.service import version_id
from app.events import repository as events_repo
from app.events.aggregates import percentile, rounded
from app.experiments.guardrails import TESTED_ON, GuardrailCheck, check_guardrail, request_samples
from app.experiments.models import Experiment
from app.experiments.stats import Lift, Sample, relative_lift, sample_ratio_mismatch, subjects_needed

BUILTIN_METRICS = ("error_rate", "latency_ms", "cost_per_request")
DEFAULT_EFFECT = 0.05  # the relative effect planned for when the observed one is ~0


@dataclass
class ArmData:
    name: str
    version_id: str
    weight: float
    subjects: int
    requests: int
    errors: int
    latencies: list[float]
    samples: dict[str, Sample]  # metric → per-request (or per-outcome) sample


def _arm_data(session: Session, experiment: Experiment, bundle: Bundle, arm: dict[str, Any]) -> ArmData:
    served = version_id(bundle.name, int(arm["version"]))
    totals = events_repo.experiment_arm_totals(session, experiment.id, served)
    latencies, _ = events_repo.latencies(session, served, None, experiment_id=experiment.id)
    samples = request_samples(totals)
    for name, (n, total, squares) in events_repo.outcome_stats(
        session, served, None, experiment_id=experiment.id
    ).items():
        samples[name] = Sample.from_sums(n, total, squares)
    return ArmData(
        name=str(arm["name"]),
        version_id=served,
        weight=float(arm["weight"]),
        subjects=totals["subjects"],
        requests=totals["requests"],
        errors=totals["errors"],
        latencies=latencies,
        samples=samples,
    )


def _lift_json(lift: Lift | None) -> dict[str, Any]:
    if lift is None:
        return {
            "lift": None,
            "lift_ci95": None,
            "p_value": None,
            "lift_ci95_always_valid": None,
            "significant": False,
        }
    return {
        "lift": rounded(lift.lift, 6),
        "lift_ci95": [rounded(v, 6) for v in lift.ci],
        "p_value": rounded(lift.p_value, 8),
        "lift_ci95_always_valid": [rounded(v, 6) for v in lift.ci_always_valid],
        "significant": lift.significant,
    }


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def decide(
    *,
    primary: str | None,
    control: ArmData,
    treatments: list[ArmData],
    lifts: dict[str, dict[str, Lift | None]],
    srm_flag: bool,
    srm_p: float,
    failing: list[tuple[str, GuardrailCheck]],
) -> str:
    """One sentence a product team can act on; never "significant" from too little data."""
    if srm_flag:
        return (
            f"SRM: results not trustworthy (sample ratio p = {srm_p:.2g}); check how traffic reaches each arm"
        )
    if failing:
        failed_arm, check = failing[0]
        return f"{failed_arm} fails its guardrail: {check.evidence()}"
    if primary is None:
        return "no primary metric: results are descriptive only"
    for arm in treatments:
        lift = lifts[arm.name].get(primary)
        if lift is not None and lift.significant:
            low, high = lift.ci_always_valid
            winner = arm.name if lift.lift > 0 else control.name
            return f"{winner} wins on {primary}: {arm.name} {_pct(lift.lift)} [{_pct(low)}, {_pct(high)}]"
    subjects = control.subjects + sum(arm.subjects for arm in treatments)
    needs: list[int] = []
    for arm in treatments:
        control_sample, treatment_sample = control.samples.get(primary), arm.samples.get(primary)
        if control_sample is None or treatment_sample is None:
            continue
        lift = lifts[arm.name].get(primary)
        effect = lift.lift if lift is not None and abs(lift.lift) >= DEFAULT_EFFECT / 5 else DEFAULT_EFFECT
        need = subjects_needed(control_sample, treatment_sample, effect)
        if need is not None:
            needs.append(need)
    if not needs:
        return f"keep collecting: not enough {primary} data yet to estimate an effect"
    return f"keep collecting: {subjects} of ~{min(needs):,} subjects needed"


def experiment_results(*, session: Session, experiment: Experiment) -> dict[str, Any]:
    bundle = session.get(Bundle, experiment.bundle_id)
    assert bundle is not None
    arms = [_arm_data(session, experiment, bundle, arm) for arm in experiment.arms]
    control, treatments = arms[0], arms[1:]
    outcome_names = sorted(
        {name for arm in arms for name in arm.samples}
        - {"error_rate", "latency_ms", "ttft_ms", "cost_per_request"}
    )
    compared = [*outcome_names, *BUILTIN_METRICS]
    lifts = {
        arm.name: {
            name: relative_lift(
                control.samples.get(name, Sample(0, 0, 0)), arm.samples.get(name, Sample(0, 0, 0))
            )
            for name in compared
        }
        for arm in treatments
    }
    srm = sample_ratio_mismatch([arm.subjects for arm in arms], [arm.weight for arm in arms])
    guardrails: list[dict[str, Any]] = []
    failing: list[tuple[str, GuardrailCheck]] = []
    for arm in treatments:
        for rail in experiment.guardrails:
            tested = TESTED_ON[rail["metric"]]
            check = check_guardrail(
                rail["metric"], float(rail["max_regression"]), control.samples[tested], arm.samples[tested]
            )
            guardrails.append(
                {
                    "metric": rail["metric"],
                    "arm": arm.name,
                    "status": check.status,
                    "regression": rounded(check.regression, 6),
                    "bound": rounded(check.bound, 6),
                }
            )
            if check.status == "failing":
                failing.append((arm.name, check))
    arms_json: list[dict[str, Any]] = []
    for arm in arms:
        metrics: dict[str, Any] = {}
        for name in outcome_names:
            sample = arm.samples.get(name, Sample(0, 0.0, 0.0))
            ci = sample.mean_ci()
            metrics[name] = {
                "n": sample.n,
                "mean": rounded(sample.mean, 6) if sample.n else None,
                "ci95": [rounded(v, 6) for v in ci] if ci else None,
            }
        entry: dict[str, Any] = {
            "name": arm.name,
            "version_id": arm.version_id,
            "weight": arm.weight,
            "subjects": arm.subjects,
            "requests": arm.requests,
            "errors": arm.errors,
            "error_rate": rounded(arm.errors / arm.requests, 6) if arm.requests else None,
            "latency_ms": {
                "p50": rounded(percentile(arm.latencies, 50), 1),
                "p95": rounded(percentile(arm.latencies, 95), 1),
            },
            "cost_per_request": rounded(arm.samples["cost_per_request"].mean, 8) if arm.requests else None,
            "metrics": metrics,
        }
        if arm is not control:
            entry["vs_control"] = {name: _lift_json(lifts[arm.name][name]) for name in compared}
        arms_json.append(entry)
    return {
        "experiment": experiment.id,
        "status": experiment.status,
        "primary_metric": experiment.primary_metric,
        "arms": arms_json,
        "srm": {"p_value": rounded(srm.p_value, 8), "flag": srm.flag, "checked": srm.checked},
        "guardrails": guardrails,
        "decision": decide(
            primary=experiment.primary_metric,
            control=control,
            treatments=treatments,
            lifts=lifts,
            srm_flag=srm.flag,
            srm_p=srm.p_value,
            failing=failing,
        ),
    }
