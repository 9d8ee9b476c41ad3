"""Statistics checked against scipy on the same inputs, and by seeded simulation."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sp

from app.experiments.stats import (
    Sample,
    chi2_sf,
    normal_ppf,
    relative_lift,
    sample_ratio_mismatch,
    sequential_halfwidth,
    subjects_needed,
    t_ppf,
    t_sf,
    welch_dof,
)


class TestSpecialFunctionsMatchScipy:
    @pytest.mark.parametrize("df", [1, 2, 3.5, 10, 29.7, 100, 1000, 1e6])
    @pytest.mark.parametrize("t", [-8.0, -2.5, -0.3, 0.0, 0.7, 1.96, 4.2, 12.0])
    def test_t_survival(self, t: float, df: float) -> None:
        assert t_sf(t, df) == pytest.approx(sp.t.sf(t, df), rel=1e-8, abs=1e-14)

    @pytest.mark.parametrize("df", [2, 7.5, 40, 5000])
    @pytest.mark.parametrize("p", [0.001, 0.025, 0.5, 0.9, 0.975, 0.9995])
    def test_t_quantiles(self, p: float, df: float) -> None:
        assert t_ppf(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-7, abs=1e-9)

    @pytest.mark.parametrize("p", [1e-6, 0.01, 0.3, 0.5, 0.975, 0.999999])
    def test_normal_quantiles(self, p: float) -> None:
        assert normal_ppf(p) == pytest.approx(sp.norm.ppf(p), rel=1e-9, abs=1e-9)

    @pytest.mark.parametrize("df", [1, 2, 3, 9, 50])
    @pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.84, 10.0, 40.0, 200.0])
    def test_chi_square_survival(self, x: float, df: int) -> None:
        assert chi2_sf(x, df) == pytest.approx(sp.chi2.sf(x, df), rel=1e-8, abs=1e-15)


class TestWelch:
    def test_degrees_of_freedom_match_scipy(self) -> None:
        rng = random.Random(7)
        a = [rng.gauss(10, 2) for _ in range(40)]
        b = [rng.gauss(11, 5) for _ in range(25)]
        expected = sp.ttest_ind(b, a, equal_var=False)
        assert welch_dof(Sample.of(a), Sample.of(b)) == pytest.approx(expected.df, rel=1e-9)

    def test_lift_p_value_is_the_welch_t_of_the_delta_method_estimate(self) -> None:
        rng = random.Random(11)
        control = Sample.of([rng.gauss(100, 20) for _ in range(300)])
        treatment = Sample.of([rng.gauss(104, 22) for _ in range(280)])
        result = relative_lift(control, treatment)
        assert result is not None
        variance = treatment.variance / (
            control.mean**2 * treatment.n
        ) + control.variance * treatment.mean**2 / (control.mean**4 * control.n)
        dof = welch_dof(control, treatment)
        assert result.lift == pytest.approx(treatment.mean / control.mean - 1)
        assert result.p_value == pytest.approx(
            2 * sp.t.sf(abs(result.lift) / math.sqrt(variance), dof), rel=1e-8
        )
        half = sp.t.ppf(0.975, dof) * math.sqrt(variance)
        assert result.ci == pytest.approx((result.lift - half, result.lift + half), rel=1e-7)

    def test_binary_metrics_are_means_of_zero_and_one(self) -> None:
        control = Sample.of([1.0] * 500 + [0.0] * 500)
        treatment = Sample.of([1.0] * 600 + [0.0] * 400)
        result = relative_lift(control, treatment)
        assert result is not None
        assert result.lift == pytest.approx(0.2)
        assert result.p_value < 1e-4
        assert result.significant

    def test_always_valid_interval_is_wider_than_the_fixed_one(self) -> None:
        control = Sample.from_sums(2000, 1000, 1000)
        treatment = Sample.from_sums(2000, 1100, 1100)
        result = relative_lift(control, treatment)
        assert result is not None
        assert (
            result.ci_always_valid[0] < result.ci[0] < result.lift < result.ci[1] < result.ci_always_valid[1]
        )

    def test_too_little_data_gives_no_estimate(self) -> None:
        assert relative_lift(Sample.from_sums(1, 1, 1), Sample.from_sums(5, 3, 3)) is None
        assert relative_lift(Sample.from_sums(5, 0, 0), Sample.from_sums(5, 3, 3)) is None


class TestSampleRatioMismatch:
    def test_chi_square_matches_scipy(self) -> None:
        observed = [5200, 4800]
        result = sample_ratio_mismatch(observed, [50, 50])
        expected = sp.chisquare(observed, [5000, 5000])
        assert result.chi2 == pytest.approx(expected.statistic)
        assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8)
        assert result.flag and result.checked

    def test_a_split_within_chance_is_not_flagged(self) -> None:
        assert not sample_ratio_mismatch([1010, 990], [50, 50]).flag

    def test_not_checked_below_eight_subjects_an_arm(self) -> None:
        result = sample_ratio_mismatch([40, 2], [50, 50])
        assert not result.checked and not result.flag


def _simulate(
    rate_control: float, rate_treatment: float, *, experiments: int, looks: int, batch: int, seed: int
) -> tuple[float, float]:
    """Share of experiments ever declared significant: (always-valid rule, naive p < 0.05 rule)."""
    rng = random.Random(seed)
    sequential_hits = naive_hits = 0
    for _ in range(experiments):
        sums = [0, 0]
        n = 0
        sequential = naive = False
        for _ in range(looks):
            n += batch
            sums[0] += sum(rng.random() < rate_control for _ in range(batch))
            sums[1] += sum(rng.random() < rate_treatment for _ in range(batch))
            result = relative_lift(
                Sample.from_sums(n, sums[0], sums[0]), Sample.from_sums(n, sums[1], sums[1])
            )
            if result is None:
                continue
            sequential = sequential or result.significant
            naive = naive or result.p_value < 0.05
        sequential_hits += sequential
        naive_hits += naive
    return sequential_hits / experiments, naive_hits / experiments


class TestPeekingSafety:
    def test_aa_false_positives_stay_at_or_below_alpha_when_checked_after_every_batch(self) -> None:
        experiments = 400
        sequential, naive = _simulate(0.3, 0.3, experiments=experiments, looks=20, batch=100, seed=20261129)
        margin = 2 * math.sqrt(0.05 * 0.95 / experiments)
        assert sequential <= 0.05 + margin, sequential
        assert naive > 0.05 + margin, f"naive peeking should inflate false positives; got {naive}"

    def test_a_real_effect_is_found(self) -> None:
        power, _ = _simulate(0.30, 0.38, experiments=100, looks=20, batch=100, seed=7)
        assert power >= 0.8, power


class TestPlanning:
    def test_subjects_needed_shrinks_as_the_effect_grows(self) -> None:
        control, treatment = Sample.from_sums(200, 60, 60), Sample.from_sums(200, 66, 66)
        small = subjects_needed(control, treatment, 0.05)
        large = subjects_needed(control, treatment, 0.20)
        assert small is not None and large is not None and small > large > 0

    def test_needed_subjects_really_clear_the_interval(self) -> None:
        control, treatment = Sample.from_sums(200, 60, 60), Sample.from_sums(200, 72, 72)
        needed = subjects_needed(control, treatment, 0.2)
        assert needed is not None
        per_obs = treatment.variance / (0.3**2 * 0.5) + control.variance * 0.36**2 / (0.3**4 * 0.5)
        assert sequential_halfwidth(per_obs, needed) < 0.2 <= sequential_halfwidth(per_obs, needed - 1)
