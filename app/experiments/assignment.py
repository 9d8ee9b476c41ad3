"""Deterministic, sticky arm assignment: GrowthBook's hash v2 over FNV-1a 32."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-8 bytes of ``text``."""
    value = FNV_OFFSET
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * FNV_PRIME) & 0xFFFFFFFF
    return value


def bucket(seed: str, subject: str) -> float:
    """n in [0, 1): fnv1a32(str(fnv1a32(seed + subject))) % 10000 / 10000 (GrowthBook v2)."""
    return (fnv1a32(str(fnv1a32(seed + subject))) % 10000) / 10000


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float


def arm_ranges(arms: Sequence[Arm]) -> list[tuple[float, float]]:
    """Consecutive ranges of [0, 1) in proportion to the weights, in the order given."""
    total = sum(arm.weight for arm in arms)
    ranges: list[tuple[float, float]] = []
    start = 0.0
    for index, arm in enumerate(arms):
        end = 1.0 if index == len(arms) - 1 else start + arm.weight / total
        ranges.append((start, end))
        start = end
    return ranges


def choose_arm(arms: Sequence[Arm], n: float) -> int:
    """The index of the arm whose range holds ``n``."""
    for index, (start, end) in enumerate(arm_ranges(arms)):
        if start <= n < end:
            return index
    return len(arms) - 1


def assign_arm(*, arms: Sequence[Arm], seed: str, subject: str | None) -> tuple[int, bool]:
    """(arm index, sticky). Without a subject the arm is drawn at random and not sticky."""
    if subject is None:
        return choose_arm(arms, random.random()), False  # noqa: S311 - assignment, not security
    return choose_arm(arms, bucket(seed, subject)), True
