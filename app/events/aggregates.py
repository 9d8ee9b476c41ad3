"""Pure summaries of event data: percentiles, a mean with its normal 95% interval, and the
fixed-size latency histogram that experiment results read instead of raw events."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


# Relative bucket width 2% (values within ±1% of a bucket's centre): latencies from 0.01 ms to a day
# fit in about 1,250 buckets, and only the buckets that hold data are stored.
HISTOGRAM_GAMMA = 1.02
HISTOGRAM_FLOOR = 0.01  # values below this share bucket 0


def histogram_bucket(value: float) -> int:
    if value < HISTOGRAM_FLOOR:
        return 0
    return 1 + math.floor(math.log(value / HISTOGRAM_FLOOR) / math.log(HISTOGRAM_GAMMA))


def bucket_edges(bucket: int) -> tuple[float, float]:
    if bucket <= 0:
        return 0.0, HISTOGRAM_FLOOR
    low = HISTOGRAM_FLOOR * HISTOGRAM_GAMMA ** (bucket - 1)
    return low, low * HISTOGRAM_GAMMA


@dataclass(frozen=True)
class Histogram:
    """A fixed-size log-bucketed histogram: bucket i holds values in ``bucket_edges(i)``."""

    counts: Mapping[int, int]
    _buckets: list[int] = field(init=False, repr=False)
    _cumulative: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        buckets = sorted(b for b, count in self.counts.items() if count > 0)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_cumulative", list(itertools.accumulate(self.counts[b] for b in buckets)))

    @classmethod
    def of(cls, values: Sequence[float]) -> Histogram:
        counts: dict[int, int] = {}
        for value in values:
            bucket = histogram_bucket(value)
            counts[bucket] = counts.get(bucket, 0) + 1
        return cls(counts)

    @property
    def n(self) -> int:
        return self._cumulative[-1] if self._cumulative else 0

    def edges_at_rank(self, rank: float) -> tuple[float, float]:
        """Edges of the bucket that holds the ``rank``-th smallest value (1 ≤ rank ≤ n)."""
        index = bisect.bisect_left(self._cumulative, min(max(rank, 1.0), float(self.n)))
        return bucket_edges(self._buckets[index])

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q < 1) as the geometric centre of the bucket that holds it."""
        if self.n == 0:
            return None
        low, high = self.edges_at_rank(math.ceil(q * self.n))
        return math.sqrt(low * high) if low > 0 else high / 2
