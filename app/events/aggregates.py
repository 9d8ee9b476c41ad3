"""Pure summaries of event data: percentiles and a mean with its normal 95% interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def mean_ci95(n: int, total: float, squares: float) -> tuple[float | None, list[float] | None]:
    """Mean and its 95% interval from count, sum and sum of squares (None below 2 observations)."""
    if n == 0:
        return None, None
    mean = total / n
    if n < 2:
        return mean, None
    variance = max((squares - n * mean * mean) / (n - 1), 0.0)
    half = Z95 * math.sqrt(variance / n)
    return mean, [mean - half, mean + half]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
