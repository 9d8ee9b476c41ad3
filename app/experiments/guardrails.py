"""Guardrails: does a treatment make a health metric worse than the tolerated amount?

A guardrail *fails* only when the always-valid interval shows the regression beyond the
tolerance, so checking after every batch (as guarded rollouts do) stays safe; it *warns*
when the point estimate is past the tolerance but the evidence is not yet conclusive.
``error_rate`` tolerances are absolute (0.02 = two percentage points); the others are
relative to the control (0.25 = 25% slower). Percentile guardrails are tested on the
mean of the same quantity, since percentiles carry no variance estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.experiments.stats import ALPHA, Sample, relative_lift, sequential_halfwidth

# guardrail metric → the per-request sample it is tested on
TESTED_ON = {
    "error_rate": "error_rate",
    "latency_ms.p50": "latency_ms",
    "latency_ms.p95": "latency_ms",
    "latency_ms.p99": "latency_ms",
    "ttft_ms.p50": "ttft_ms",
    "ttft_ms.p95": "ttft_ms",
    "cost_per_request": "cost_per_request",
}
MIN_SAMPLE = 20


def request_samples(totals: dict[str, Any]) -> dict[str, Sample]:
    """Per-request samples of one arm from its event totals (app.events.repository)."""
    return {
        "error_rate": Sample.from_sums(totals["requests"], totals["errors"], totals["errors"]),
        "latency_ms": Sample.from_sums(totals["timed"], totals["latency_sum"], totals["latency_squares"]),
        "ttft_ms": Sample.from_sums(totals["streamed"], totals["ttft_sum"], totals["ttft_squares"]),
        "cost_per_request": Sample.from_sums(totals["requests"], totals["cost"], totals["cost_squares"]),
    }


@dataclass(frozen=True)
class GuardrailCheck:
    metric: str
    status: str  # ok | warning | failing | insufficient-data
    regression: float | None  # point estimate, in the guardrail's unit (absolute or relative)
    bound: float | None  # the always-valid lower bound of the regression
    max_regression: float

    def evidence(self) -> str:
        if self.regression is None or self.bound is None:
            return f"{self.metric}: not enough data"
        unit = "pp" if self.metric == "error_rate" else "%"
        regression, bound, tolerance = (100 * v for v in (self.regression, self.bound, self.max_regression))
        return (
            f"{self.metric} regressed by {regression:+.1f}{unit} "
            f"(always-valid lower bound {bound:+.1f}{unit}, tolerance {tolerance:.1f}{unit})"
        )


def check_guardrail(metric: str, max_regression: float, control: Sample, treatment: Sample) -> GuardrailCheck:
    """Compare one guardrail metric of a treatment arm with the control."""
    if control.n < MIN_SAMPLE or treatment.n < MIN_SAMPLE:
        return GuardrailCheck(metric, "insufficient-data", None, None, max_regression)
    if metric == "error_rate":
        regression = treatment.mean - control.mean
        variance = treatment.variance / treatment.n + control.variance / control.n
        n = control.n + treatment.n
        half = sequential_halfwidth(variance * n, n, ALPHA) if variance > 0 else 0.0
        bound = regression - half
    else:
        lift = relative_lift(control, treatment)
        if lift is None:
            return GuardrailCheck(metric, "insufficient-data", None, None, max_regression)
        regression, bound = lift.lift, lift.ci_always_valid[0]
    if math.isfinite(bound) and bound > max_regression:
        status = "failing"
    elif regression > max_regression:
        status = "warning"
    else:
        status = "ok"
    return GuardrailCheck(metric, status, regression, bound, max_regression)
