"""A small seeded run of scripts/bench/sequential_sim.py: chatver's decisions hold up when results
are read after every batch, on clustered traffic (docs/benchmarks.md has the full run).

Each experiment is checked at 20 looks and decided if its rule fired at any of them. Thresholds
allow 2 standard errors of the Monte-Carlo estimate; the power levels are the full run's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.events.aggregates import histogram_bucket
from scripts.bench.sequential_sim import (
    NullRun,
    clustered_null,
    cuped_power,
    first_look,
    histogram_buckets,
    latency_guardrail,
    thumbs_power,
)

ALPHA = 0.05
LOOKS = 20
BATCH = 25  # new subjects per arm per look, as the full run
SEED = 20261130  # the full run's seed; the experiments here are the full run's first ones


def margin(rate: float, n: int) -> float:
    """Two standard errors of a Monte-Carlo share estimated from n experiments."""
    return 2 * math.sqrt(rate * (1 - rate) / n)


@pytest.fixture(scope="module")
def null() -> NullRun:
    return clustered_null(400, looks=LOOKS, batch=250, seed=SEED)


def test_the_simulation_buckets_latencies_exactly_as_chatvers_histogram() -> None:
    values = np.exp(np.random.default_rng(1).normal(6.5, 2.0, 20_000))
    values[:3] = (0.0, 0.005, 0.01)
    assert histogram_buckets(values).tolist() == [histogram_bucket(v) for v in values.tolist()]


class TestClusteredAA:
    def test_subject_level_false_positives_stay_at_or_below_alpha_when_checked_after_every_batch(
        self, null: NullRun
    ) -> None:
        fpr = first_look(null.subject)
        assert fpr.rate <= ALPHA + margin(ALPHA, fpr.n), fpr

    def test_treating_every_rating_as_independent_inflates_false_positives_far_above_alpha(
        self, null: NullRun
    ) -> None:
        fpr = first_look(null.request)
        assert fpr.rate > ALPHA + margin(ALPHA, fpr.n), fpr

    def test_holm_keeps_the_family_wise_rate_of_two_treatment_arms_at_or_below_alpha(
        self, null: NullRun
    ) -> None:
        fwer = first_look(null.holm)
        assert fwer.rate <= ALPHA + margin(ALPHA, fwer.n), fwer


def test_a_true_20_percent_thumbs_up_lift_is_detected_by_the_subject_level_rule() -> None:
    run = thumbs_power(200, looks=LOOKS, batch=BATCH, lift=0.20, seed=SEED)
    power, full_run = first_look(run.detected), 0.59
    assert power.rate >= full_run - margin(full_run, power.n), power


def test_a_true_15_percent_p95_latency_regression_fails_the_guardrail() -> None:
    run = latency_guardrail(100, looks=LOOKS, batch=100, regression=0.15, seed=SEED)
    power, full_run = first_look(run.failing), 0.64
    assert power.rate >= full_run - margin(full_run, power.n), power


def test_the_p95_latency_guardrail_rarely_fails_an_aa_experiment() -> None:
    run = latency_guardrail(100, looks=LOOKS, batch=100, regression=0.0, seed=SEED)
    alarms = first_look(run.failing)
    assert alarms.rate <= ALPHA + margin(ALPHA, alarms.n), alarms


def test_cuped_narrows_the_interval_by_the_square_root_of_one_minus_rho_squared() -> None:
    run = cuped_power(200, looks=LOOKS, batch=BATCH, effect=0.05, seed=SEED)
    ratio = float(np.nanmean(run.width_ratio))
    assert ratio == pytest.approx(math.sqrt(1 - 0.5**2), abs=0.04)
    assert first_look(run.cuped).hits >= first_look(run.plain).hits
