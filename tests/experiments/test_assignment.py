"""GrowthBook v2 hashing and weighted ranges."""

from __future__ import annotations

from collections import Counter

import pytest

from app.experiments.assignment import Arm, arm_ranges, assign_arm, bucket, choose_arm, fnv1a32


class TestHash:
    def test_fnv1a32_known_values(self) -> None:
        assert fnv1a32("") == 0x811C9DC5
        assert fnv1a32("a") == 0xE40C292C
        assert fnv1a32("foobar") == 0xBF9CF968

    def test_contract_vector(self) -> None:
        assert bucket("seed", "a") == 0.0505


class TestRanges:
    def test_ranges_are_consecutive_and_proportional(self) -> None:
        ranges = arm_ranges([Arm("control", 50), Arm("treatment", 30), Arm("other", 20)])
        assert ranges[0] == (0.0, 0.5)
        assert ranges[1] == pytest.approx((0.5, 0.8))
        assert ranges[2][1] == 1.0

    def test_choose_arm_boundaries(self) -> None:
        arms = [Arm("a", 1), Arm("b", 1)]
        assert choose_arm(arms, 0.0) == 0
        assert choose_arm(arms, 0.4999) == 0
        assert choose_arm(arms, 0.5) == 1
        assert choose_arm(arms, 0.9999) == 1


class TestAssignment:
    def test_same_subject_always_gets_the_same_arm(self) -> None:
        arms = [Arm("control", 50), Arm("treatment", 50)]
        first = [assign_arm(arms=arms, seed="exp_1", subject=f"u-{i}") for i in range(200)]
        again = [assign_arm(arms=arms, seed="exp_1", subject=f"u-{i}") for i in range(200)]
        assert first == again
        assert all(sticky for _, sticky in first)

    def test_split_follows_the_weights_within_sampling_error(self) -> None:
        arms = [Arm("control", 70), Arm("treatment", 30)]
        counts = Counter(assign_arm(arms=arms, seed="exp_w", subject=f"user-{i}")[0] for i in range(20_000))
        share = counts[1] / 20_000
        # 5 standard errors of a binomial proportion at n=20000: ±0.016
        assert abs(share - 0.30) < 5 * (0.3 * 0.7 / 20_000) ** 0.5

    def test_without_subject_assignment_is_random_and_not_sticky(self) -> None:
        arms = [Arm("control", 50), Arm("treatment", 50)]
        draws = [assign_arm(arms=arms, seed="s", subject=None) for _ in range(400)]
        assert {sticky for _, sticky in draws} == {False}
        assert {index for index, _ in draws} == {0, 1}
