"""Guardrail verdicts on per-subject ratio sums, including the degenerate metrics real models give."""

from __future__ import annotations

import random

import pytest

from app.experiments.evidence import ArmEvidence
from app.experiments.guardrails import check_guardrail
from app.experiments.stats import RatioSums


def arm(costs: list[list[float]], errors: list[list[int]] | None = None) -> ArmEvidence:
    """One arm from per-subject lists of per-request costs (and error flags)."""
    errors = errors or [[0] * len(c) for c in costs]

    def ratio(values: list[list[float]]) -> RatioSums:
        ys = [sum(v) for v in values]
        ds = [float(len(v)) for v in values]
        return RatioSums(
            len(values),
            sum(ys),
            sum(y * y for y in ys),
            sum(ds),
            sum(d * d for d in ds),
            sum(y * d for y, d in zip(ys, ds, strict=True)),
        )

    return ArmEvidence(
        version_id="v",
        units=len(costs),
        requests=sum(len(c) for c in costs),
        ratios={
            "cost_per_request": ratio(costs),
            "error_rate": ratio([[float(e) for e in row] for row in errors]),
        },
    )


def subjects(n: int, cost: float, rng: random.Random | None = None) -> list[list[float]]:
    rng = rng or random.Random(1)
    return [[cost] * rng.randint(1, 8) for _ in range(n)]


class TestCostPerRequest:
    def test_a_model_that_costs_nothing_in_both_arms_passes(self) -> None:
        check = check_guardrail("cost_per_request", 0.1, arm(subjects(500, 0.0)), arm(subjects(500, 0.0)))
        assert (check.status, check.regression, check.upper) == ("ok", 0.0, 0.0)
        assert check.within_tolerance

    def test_the_same_fixed_price_in_both_arms_passes(self) -> None:
        check = check_guardrail("cost_per_request", 0.1, arm(subjects(300, 0.002)), arm(subjects(300, 0.002)))
        assert check.status == "ok" and check.regression == pytest.approx(0.0)
        assert check.within_tolerance

    def test_a_fixed_price_that_doubles_fails(self) -> None:
        check = check_guardrail("cost_per_request", 0.1, arm(subjects(300, 0.002)), arm(subjects(300, 0.004)))
        assert check.status == "failing" and check.regression == pytest.approx(1.0)

    def test_a_paid_treatment_against_a_free_control_fails_and_says_why(self) -> None:
        rng = random.Random(3)
        paid = [[rng.uniform(0.001, 0.003) for _ in range(rng.randint(1, 5))] for _ in range(200)]
        check = check_guardrail("cost_per_request", 0.1, arm(subjects(200, 0.0)), arm(paid))
        assert check.status == "failing" and check.regression is None
        assert "the control costs nothing" in check.evidence()

    def test_too_few_subjects_is_insufficient_not_ok(self) -> None:
        check = check_guardrail("cost_per_request", 0.1, arm(subjects(5, 0.0)), arm(subjects(5, 0.0)))
        assert check.status == "insufficient-data" and not check.within_tolerance


class TestWithinTolerance:
    def test_a_point_estimate_inside_the_tolerance_is_not_yet_evidence(self) -> None:
        # 1% vs 2% errors on 60 subjects: the estimate (+1pp) is inside a 2pp tolerance, the upper
        # bound is not, so a promotion must wait.
        rng = random.Random(5)

        def errors(rate: float) -> list[list[int]]:
            return [[int(rng.random() < rate) for _ in range(5)] for _ in range(60)]

        control = arm([[0.0] * 5] * 60, errors(0.01))
        treatment = arm([[0.0] * 5] * 60, errors(0.02))
        check = check_guardrail("error_rate", 0.02, control, treatment)
        assert check.status == "ok"
        assert check.upper is not None and check.upper > 0.02
        assert not check.within_tolerance
