"""Statistics checked against scipy and textbook formulas on the same inputs, and by seeded simulation."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sp

from app.events.aggregates import Histogram, bucket_edges
from app.experiments.stats import (
    ALPHA,
    RatioSums,
    Sample,
    always_valid_p,
    cuped_adjustment,
    design_effect,
    holm,
    quantile_bounds,
    quantile_ratio_bounds,
    relative_lift,
    sample_ratio_mismatch,
    sequential_halfwidth,
    subjects_needed,
    welch_dof,
)


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

    def test_not_checked_below_eight_expected_subjects_an_arm(self) -> None:
        result = sample_ratio_mismatch([9, 1], [50, 50])
        assert not result.checked and not result.flag

    def test_an_arm_that_gets_nothing_is_flagged(self) -> None:
        result = sample_ratio_mismatch([40, 0], [50, 50])
        assert result.checked and result.flag


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


def ratio_sums(ys: list[float], ds: list[float], xs: list[float] | None = None) -> RatioSums:
    xs = xs if xs is not None else [0.0] * len(ys)
    return RatioSums(
        n=len(ys),
        y=math.fsum(ys),
        yy=math.fsum(y * y for y in ys),
        d=math.fsum(ds),
        dd=math.fsum(d * d for d in ds),
        yd=math.fsum(y * d for y, d in zip(ys, ds, strict=True)),
        x=math.fsum(xs),
        xx=math.fsum(x * x for x in xs),
        yx=math.fsum(y * x for y, x in zip(ys, xs, strict=True)),
        dx=math.fsum(d * x for d, x in zip(ds, xs, strict=True)),
        nx=sum(1 for x in xs if x != 0),
    )


def clustered_subjects(rng: random.Random, n: int, rate: float = 0.3) -> tuple[list[float], list[float]]:
    """(thumbs up, ratings) per subject: 1..49 ratings each, with a propensity of the subject's own."""
    ys, ds = [], []
    for _ in range(n):
        count = rng.randint(1, 49)
        propensity = rng.betavariate(2 * rate / (1 - rate), 2)
        ys.append(float(sum(rng.random() < propensity for _ in range(count))))
        ds.append(float(count))
    return ys, ds


class TestRatioMetrics:
    def test_a_unit_mean_is_the_plain_sample(self) -> None:
        rng = random.Random(3)
        values = [rng.gauss(5, 2) for _ in range(200)]
        sample = ratio_sums(values, [1.0] * 200).sample()
        plain = Sample.of(values)
        assert sample.mean == pytest.approx(plain.mean)
        assert sample.variance == pytest.approx(plain.variance, rel=1e-9)

    def test_delta_method_variance_is_the_textbook_formula(self) -> None:
        rng = random.Random(5)
        ys, ds = clustered_subjects(rng, 300)
        sums = ratio_sums(ys, ds)
        ratio = sum(ys) / sum(ds)
        linear = [(y - ratio * d) / (sum(ds) / len(ds)) for y, d in zip(ys, ds, strict=True)]
        assert sums.sample().mean == pytest.approx(ratio)
        assert sums.sample().variance == pytest.approx(float(sp.tstd(linear) ** 2), rel=1e-9)

    def test_delta_method_standard_error_matches_the_spread_across_experiments(self) -> None:
        rng = random.Random(11)
        estimates, predicted = [], []
        for _ in range(300):
            sums = ratio_sums(*clustered_subjects(rng, 200))
            sample = sums.sample()
            estimates.append(sample.mean)
            predicted.append(math.sqrt(sample.variance / sample.n))
        observed = float(sp.tstd(estimates))
        assert observed == pytest.approx(sum(predicted) / len(predicted), rel=0.12)

    def test_clustering_makes_the_per_request_variance_too_small(self) -> None:
        rng = random.Random(13)
        ys, ds = clustered_subjects(rng, 400)
        sums = ratio_sums(ys, ds)
        requests = Sample.from_sums(int(sum(ds)), sum(ys), sum(ys))  # every rating as if independent
        assert design_effect(sums.sample(), requests) > 3


class TestCuped:
    def test_adjustment_removes_the_share_of_variance_the_covariate_explains(self) -> None:
        rng = random.Random(17)
        arms = []
        for _ in range(2):
            xs, ys = [], []
            for _ in range(4000):
                x = rng.gauss(10, 2)
                ys.append(10 + 0.5 * (x - 10) + rng.gauss(0, 2 * math.sqrt(0.75)))  # correlation 0.5
                xs.append(x)
            arms.append(ratio_sums(ys, [1.0] * len(ys), xs))
        adjustment = cuped_adjustment(arms)
        assert adjustment is not None and adjustment.theta == pytest.approx(0.5, abs=0.05)
        plain, adjusted = arms[0].sample(), arms[0].sample(adjustment)
        assert adjusted.variance / plain.variance == pytest.approx(0.75, abs=0.04)
        assert adjusted.mean == pytest.approx(plain.mean, abs=0.1)

    def test_no_pre_period_means_no_adjustment(self) -> None:
        rng = random.Random(19)
        arms = [ratio_sums(*clustered_subjects(rng, 100)) for _ in range(2)]
        assert cuped_adjustment(arms) is None


class TestFamilies:
    def test_holm_adjusts_like_the_textbook(self) -> None:
        rejected, adjusted = holm([0.01, 0.04, 0.03])
        assert adjusted == pytest.approx([0.03, 0.06, 0.06])
        assert rejected == [True, False, False]

    def test_holm_rejects_everything_that_bonferroni_does(self) -> None:
        rng = random.Random(23)
        for _ in range(200):
            p = [rng.random() ** 3 for _ in range(rng.randint(1, 6))]
            rejected, _ = holm(p)
            assert all(r for r, value in zip(rejected, p, strict=True) if value < ALPHA / len(p))

    def test_the_always_valid_p_value_inverts_the_confidence_sequence(self) -> None:
        rng = random.Random(29)
        for _ in range(500):
            n, variance = rng.randint(10, 100_000), rng.uniform(0.01, 5)
            estimate = rng.gauss(0, 3 * math.sqrt(variance / n))
            alpha = rng.choice([0.05, 0.01, 0.025])
            excluded = abs(estimate) > sequential_halfwidth(variance, n, alpha)
            assert excluded == (always_valid_p(estimate, variance, n) < alpha)


class TestQuantiles:
    def test_histogram_quantiles_are_within_one_percent(self) -> None:
        rng = random.Random(31)
        values = [rng.lognormvariate(6.5, 0.5) for _ in range(20_000)]
        histogram = Histogram.of(values)
        for q in (0.5, 0.95, 0.99):
            exact = float(sorted(values)[math.ceil(q * len(values)) - 1])
            estimate = histogram.quantile(q)
            assert estimate is not None and estimate == pytest.approx(exact, rel=0.011)

    def test_the_quantile_sequence_covers_the_true_p95_at_every_look(self) -> None:
        true_p95 = math.exp(6.5 + 0.5 * float(sp.norm.ppf(0.95)))
        rng = random.Random(37)
        misses = 0
        runs = 200
        for _ in range(runs):
            values: list[float] = []
            for _ in range(20):
                values += [rng.lognormvariate(6.5, 0.5) for _ in range(100)]
                bounds = quantile_bounds(Histogram.of(values), 0.95, ALPHA)
                if bounds is not None and not bounds[0] <= true_p95 <= bounds[1]:
                    misses += 1
                    break
        assert misses / runs <= ALPHA

    def test_no_bounds_until_the_upper_one_exists(self) -> None:
        assert quantile_bounds(Histogram.of([100.0] * 10), 0.99, ALPHA) is None

    def test_arms_that_meet_at_a_bucket_edge_give_a_lower_bound_of_exactly_zero(self) -> None:
        # Control's values all fall in one bucket, treatment's in the next: the data cannot tell
        # the two quantiles apart at their shared edge, so the regression's lower bound is 0, not
        # the 1e-16 of floating-point noise that a max_regression of 0.0 would read as failing.
        for bucket in (1, 137, 404, 911):
            low, high = bucket_edges(bucket)
            control = Histogram({bucket: 5000})
            treatment = Histogram({bucket + 1: 5000})
            bounds = quantile_ratio_bounds(control, treatment, 0.95, ALPHA)
            assert bounds is not None
            assert bounds[0] == 0.0, (bucket, low, high, bounds)
            assert bounds[1] == pytest.approx(bucket_edges(bucket + 1)[1] / low - 1)
