"""Experiment results: per-arm exposure and metrics, lifts against the control, SRM,
guardrails and a plain-words decision (API.md, Experiments → results).

Exposure and outcomes are counted under the version that actually served each request,
never re-derived from the hash. The unit of analysis is the subject: per-request metrics
are ratios over subjects (delta method), adjusted with CUPED where subjects have a
pre-period on the production version. Everything is read from the per-subject aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.bundles.models import Bundle
from app.bundles.service import version_id
from app.events import subject_repository as subjects
from app.events.aggregates import rounded
from app.experiments.evidence import PER_REQUEST, ArmEvidence, load_arms
from app.experiments.guardrails import GuardrailCheck, check_guardrail, family_alpha
from app.experiments.models import Experiment
from app.experiments.schemas import (
    PRIMARY_BUILTINS,
    AnalysisPublic,
    ArmResult,
    CrossoverCheck,
    ExperimentResults,
    GuardrailPublic,
    LiftPublic,
    MeanPublic,
    MetricPublic,
    SrmCheck,
    SrmPublic,
)
from app.experiments.stats import (
    ALPHA,
    Lift,
    RatioSums,
    Sample,
    cuped_adjustment,
    holm,
    relative_lift,
    sample_ratio_mismatch,
    subjects_needed,
    variance_reduction,
)

BUILTIN_METRICS = PRIMARY_BUILTINS
DEFAULT_EFFECT = 0.05  # the relative effect planned for when the observed one is ~0
CROSSOVER_LIMIT = 0.01  # share of subjects seen in several arms that makes results untrustworthy


@dataclass
class Arm:
    name: str
    weight: float
    evidence: ArmEvidence


@dataclass(frozen=True)
class Comparison:
    lift: Lift | None
    control: Sample
    treatment: Sample
    reduction: float | None


def compare(control: RatioSums, treatment: RatioSums, all_arms: list[RatioSums]) -> Comparison:
    """Treatment vs control on one ratio metric, with CUPED when the pre-period allows it."""
    adjustment = cuped_adjustment(all_arms)
    c, t = control.sample(adjustment), treatment.sample(adjustment)
    reduction = None
    if adjustment is not None:
        plain_c, plain_t = control.sample(), treatment.sample()
        plain = Sample(1, 0, plain_c.variance / max(plain_c.n, 1) + plain_t.variance / max(plain_t.n, 1))
        adjusted = Sample(1, 0, c.variance / max(c.n, 1) + t.variance / max(t.n, 1))
        reduction = variance_reduction(plain, adjusted)
    return Comparison(relative_lift(c, t), c, t, reduction)


def _interval(values: tuple[float, float] | None, digits: int = 6) -> list[float] | None:
    return [round(v, digits) for v in values] if values is not None else None


def lift_public(comparison: Comparison) -> LiftPublic:
    lift = comparison.lift
    if lift is None:
        return LiftPublic(
            lift=None,
            lift_ci95=None,
            p_value=None,
            lift_ci95_always_valid=None,
            p_value_always_valid=None,
            significant=False,
        )
    return LiftPublic(
        lift=round(lift.lift, 6),
        lift_ci95=_interval(lift.ci),
        p_value=round(lift.p_value, 8),
        lift_ci95_always_valid=_interval(lift.ci_always_valid),
        p_value_always_valid=round(lift.p_value_always_valid, 8),
        significant=lift.significant,
        cuped_variance_reduction=rounded(comparison.reduction, 4),
    )


def _mean(sums: RatioSums) -> MeanPublic:
    sample = sums.sample()
    ci = sample.mean_ci() if sums.ratio is not None else None
    return MeanPublic(mean=rounded(sums.ratio, 6), ci95=_interval(ci))


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def decide(
    *,
    primary: str | None,
    control: Arm,
    treatments: list[Arm],
    primary_lifts: dict[str, Comparison],
    winners: dict[str, bool],
    srm: SrmPublic,
    failing: list[tuple[str, GuardrailCheck]],
) -> str:
    """One sentence a product team can act on; never "significant" from too little data."""
    if srm.flag:
        if srm.crossover.flag:
            return (
                f"SRM: results not trustworthy ({srm.crossover.subjects} subjects, "
                f"{srm.crossover.share:.1%}, were served more than one arm); check how runtimes pick the arm"
            )
        return (
            f"SRM: results not trustworthy (sample ratio p = {srm.p_value:.2g}); "
            "check how traffic reaches each arm"
        )
    if failing:
        failed_arm, check = failing[0]
        return f"{failed_arm} fails its guardrail: {check.evidence()}"
    if primary is None:
        return "no primary metric: results are descriptive only"
    for arm in treatments:
        lift = primary_lifts[arm.name].lift
        if lift is not None and winners[arm.name]:
            low, high = lift.ci_always_valid
            winner = arm.name if lift.lift > 0 else control.name
            return f"{winner} wins on {primary}: {arm.name} {_pct(lift.lift)} [{_pct(low)}, {_pct(high)}]"
    units = control.evidence.units + sum(arm.evidence.units for arm in treatments)
    needs: list[int] = []
    for arm in treatments:
        comparison = primary_lifts[arm.name]
        lift = comparison.lift
        effect = lift.lift if lift is not None and abs(lift.lift) >= DEFAULT_EFFECT / 5 else DEFAULT_EFFECT
        need = subjects_needed(comparison.control, comparison.treatment, effect, ALPHA / len(treatments))
        if need is not None:
            needs.append(need)
    if not needs:
        return f"keep collecting: not enough {primary} data yet to estimate an effect"
    return f"keep collecting: {units} of ~{min(needs):,} subjects needed"


def _srm(session: Session, experiment: Experiment, arms: list[Arm]) -> SrmPublic:
    names = [arm.name for arm in arms]
    weights = [arm.weight for arm in arms]
    total_weight = sum(weights)
    share = {arm.name: round(arm.weight / total_weight, 6) for arm in arms}
    by_version = {arm.evidence.version_id: arm.name for arm in arms}
    assigned_units = subjects.units_by_assigned_arm(session, experiment.id)
    pairs = subjects.assignment_counts(session, experiment.id)
    served: dict[str, int] = dict.fromkeys(names, 0)
    for (_, version), count in pairs.items():
        arm_name = by_version.get(version)
        if arm_name is not None:
            served[arm_name] += count
    by_assignment = {name: assigned_units.get(name, 0) for name in names}
    checks = []
    for unit, counts in (
        ("subject, in its assigned arm", by_assignment),
        ("unit served by each arm", served),
    ):
        result = sample_ratio_mismatch([counts[name] for name in names], weights)
        checks.append(
            SrmCheck(
                unit=unit,
                chi2=round(result.chi2, 6),
                p_value=round(result.p_value, 8),
                flag=result.flag,
                checked=result.checked,
                counts=counts,
                expected_share=share,
            )
        )
    units = sum(assigned_units.values())
    arm_versions = {arm.name: arm.evidence.version_id for arm in arms}
    crossed, other, either = subjects.crossover_units(session, experiment.id, arm_versions)
    crossover = CrossoverCheck(
        subjects=crossed,
        share=round(crossed / units, 6) if units else 0.0,
        served_other_arm=other,
        units=either,
        units_share=round(either / units, 6) if units else 0.0,
        flag=units > 0 and either / units > CROSSOVER_LIMIT,
    )
    return SrmPublic(
        p_value=min(checks[0].p_value, checks[1].p_value),
        flag=checks[0].flag or checks[1].flag or crossover.flag,
        checked=checks[0].checked and checks[1].checked,
        assigned=checks[0],
        exposure=checks[1],
        crossover=crossover,
    )


def _arm_result(arm: Arm, outcome_names: list[str]) -> ArmResult:
    e = arm.evidence
    metrics = {}
    for name in outcome_names:
        sums = e.outcomes.get(name)
        if sums is None:
            metrics[name] = MetricPublic(
                n=e.units, observations=0, mean=None, ci95=None, per_subject=MeanPublic(mean=None, ci95=None)
            )
            continue
        ratio = _mean(sums.per_outcome)
        metrics[name] = MetricPublic(
            n=sums.per_outcome.n,
            observations=sums.observations,
            mean=ratio.mean,
            ci95=ratio.ci95,
            per_subject=_mean(sums.per_subject),
        )
    latency, ttft = e.histogram("latency_ms"), e.histogram("ttft_ms")
    return ArmResult(
        name=arm.name,
        version_id=e.version_id,
        weight=arm.weight,
        subjects=e.units,
        requests=e.requests,
        errors=e.errors,
        error_rate=rounded(e.ratio("error_rate").ratio, 6),
        latency_ms={f"p{q}": rounded(latency.quantile(q / 100), 1) for q in (50, 95, 99)},
        ttft_ms={f"p{q}": rounded(ttft.quantile(q / 100), 1) for q in (50, 95)},
        cost_per_request=rounded(e.ratio("cost_per_request").ratio, 8),
        requests_per_subject=rounded(e.ratio("requests_per_subject").ratio, 4),
        metrics=metrics,
        per_request={name: _mean(e.ratio(name)) for name in BUILTIN_METRICS},
    )


def _outcome_comparisons(name: str, control: Arm, arm: Arm, arms: list[Arm]) -> tuple[Comparison, Comparison]:
    empty = RatioSums(0, 0, 0, 0, 0, 0)

    def sums(a: Arm, kind: str) -> RatioSums:
        o = a.evidence.outcomes.get(name)
        return empty if o is None else getattr(o, kind)

    return (
        compare(
            sums(control, "per_outcome"), sums(arm, "per_outcome"), [sums(a, "per_outcome") for a in arms]
        ),
        compare(
            sums(control, "per_subject"), sums(arm, "per_subject"), [sums(a, "per_subject") for a in arms]
        ),
    )


def experiment_results(*, session: Session, experiment: Experiment) -> ExperimentResults:
    bundle = session.get(Bundle, experiment.bundle_id)
    assert bundle is not None
    ids = [version_id(bundle.name, int(arm["version"])) for arm in experiment.arms]
    evidence = load_arms(session, experiment.id, 0, ids)
    arms = [
        Arm(str(spec["name"]), float(spec["weight"]), evidence[vid])
        for spec, vid in zip(experiment.arms, ids, strict=True)
    ]
    control, treatments = arms[0], arms[1:]
    outcome_names = sorted({name for arm in arms for name in arm.evidence.outcomes} - set(PER_REQUEST))
    primary = experiment.primary_metric

    results = [_arm_result(arm, outcome_names) for arm in arms]
    primary_lifts: dict[str, Comparison] = {}
    for arm, result in zip(treatments, results[1:], strict=True):
        vs: dict[str, LiftPublic] = {}
        for name in outcome_names:
            per_outcome, per_subject = _outcome_comparisons(name, control, arm, arms)
            vs[name] = lift_public(per_outcome).model_copy(update={"per_subject": lift_public(per_subject)})
            if name == primary:
                primary_lifts[arm.name] = per_outcome
        for name in BUILTIN_METRICS:
            comparison = compare(
                control.evidence.ratio(name), arm.evidence.ratio(name), [a.evidence.ratio(name) for a in arms]
            )
            vs[name] = lift_public(comparison)
            if name == primary:
                primary_lifts[arm.name] = comparison
        result.vs_control = vs
    empty = Comparison(None, Sample(0, 0, 0), Sample(0, 0, 0), None)
    primary_lifts = {arm.name: primary_lifts.get(arm.name, empty) for arm in treatments}

    # Holm across treatment arms on the always-valid p-values of the primary metric.
    p_values = [(c.lift.p_value_always_valid if c.lift else 1.0) for c in primary_lifts.values()]
    rejected, adjusted = holm(p_values, ALPHA)
    winners = dict(zip(primary_lifts, rejected, strict=True))
    if primary is not None:
        for result, p_adjusted, reject in zip(results[1:], adjusted, rejected, strict=True):
            assert result.vs_control is not None
            if primary in result.vs_control:
                result.vs_control[primary] = result.vs_control[primary].model_copy(
                    update={"p_value_adjusted": round(p_adjusted, 8), "significant": reject}
                )

    guardrail_alpha = family_alpha(len(experiment.guardrails), len(treatments))
    guardrails: list[GuardrailPublic] = []
    failing: list[tuple[str, GuardrailCheck]] = []
    for arm in treatments:
        for rail in experiment.guardrails:
            check = check_guardrail(
                rail["metric"], float(rail["max_regression"]), control.evidence, arm.evidence, guardrail_alpha
            )
            guardrails.append(guardrail_public(check, arm.name))
            if check.status == "failing":
                failing.append((arm.name, check))

    srm = _srm(session, experiment, arms)
    return ExperimentResults(
        experiment=experiment.id,
        status=experiment.status,
        primary_metric=primary,
        analysis=AnalysisPublic(
            unit="subject",
            metrics=(
                "outcomes and per-request metrics are ratios of per-subject sums with delta-method "
                "variances; per_subject sums each outcome per exposed subject"
            ),
            alpha=ALPHA,
            decision_family=f"Holm over {len(treatments)} treatment arm(s), always-valid p-values",
            guardrail_alpha=round(guardrail_alpha, 8),
            cuped="applied per metric when every arm has pre-period data for enough subjects",
        ),
        arms=results,
        srm=srm,
        guardrails=guardrails,
        decision=decide(
            primary=primary,
            control=control,
            treatments=treatments,
            primary_lifts=primary_lifts,
            winners=winners,
            srm=srm,
            failing=failing,
        ),
    )


def guardrail_public(check: GuardrailCheck, arm: str) -> GuardrailPublic:
    return GuardrailPublic(
        metric=check.metric,
        arm=arm,
        status=check.status,
        regression=rounded(check.regression, 6),
        bound=rounded(check.bound, 6),
        upper=rounded(check.upper, 6),
        max_regression=check.max_regression,
        alpha=round(check.alpha, 8),
    )
