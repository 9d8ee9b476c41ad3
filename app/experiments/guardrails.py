"""Guardrails: does a treatment make a health metric worse than the tolerated amount?

A guardrail *fails* only when the always-valid interval shows the regression beyond the
tolerance, so checking after every batch (as guarded rollouts do) stays safe; it *warns*
when the point estimate is past the tolerance but the evidence is not yet conclusive, and
is *ok* when the estimate is within it. ``error_rate`` tolerances are absolute (0.02 = two
percentage points); the others are relative to the control (0.25 = 25% slower).

Subjects are the units: error rate and cost per request are ratio metrics over subjects.
Percentile guardrails compare percentiles (treatment's p95 over control's), with an
always-valid interval for each arm's quantile read from its latency histogram, widened by
the design effect of subject clustering. Every check of a family (guardrails × treatment
arms) runs at α divided by the family's size (Bonferroni), so more guardrails do not mean
more false alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.experiments.evidence import ArmEvidence
from app.experiments.stats import (
    ALPHA,
    Sample,
    design_effect,
    quantile_ratio_bounds,
    relative_lift,
    sequential_halfwidth,
)

MIN_SAMPLE = 20  # units per arm (observations, for a percentile) before a guardrail is judged


@dataclass(frozen=True)
class GuardrailCheck:
    metric: str
    status: str  # ok | warning | failing | insufficient-data
    regression: float | None  # point estimate, in the guardrail's unit (absolute or relative)
    bound: float | None  # the always-valid lower bound of the regression
    upper: float | None  # and its upper bound
    max_regression: float
    alpha: float
    note: str | None = None  # said instead of the numbers when they cannot be relative (a free control)

    @property
    def within_tolerance(self) -> bool:
        """Shown, not just estimated: the always-valid upper bound is within the tolerance."""
        return self.status == "ok" and self.upper is not None and self.upper <= self.max_regression

    def evidence(self) -> str:
        if self.note is not None:
            return f"{self.metric}: {self.note}"
        if self.regression is None or self.bound is None:
            return f"{self.metric}: not enough data"
        unit = "pp" if self.metric == "error_rate" else "%"
        regression, bound, tolerance = (100 * v for v in (self.regression, self.bound, self.max_regression))
        return (
            f"{self.metric} regressed by {regression:+.1f}{unit} "
            f"(always-valid lower bound {bound:+.1f}{unit}, tolerance {tolerance:.1f}{unit})"
        )


def _percentile(metric: str) -> tuple[str, float] | None:
    base, _, label = metric.partition(".p")
    return (base, int(label) / 100) if label else None


def check_guardrail(
    metric: str, max_regression: float, control: ArmEvidence, treatment: ArmEvidence, alpha: float = ALPHA
) -> GuardrailCheck:
    """Compare one guardrail metric of a treatment arm with the control, at level ``alpha``."""

    def insufficient() -> GuardrailCheck:
        return GuardrailCheck(metric, "insufficient-data", None, None, None, max_regression, alpha)

    percentile = _percentile(metric)
    if percentile is not None:
        base, q = percentile
        c_hist, t_hist = control.histogram(base), treatment.histogram(base)
        if c_hist.n < MIN_SAMPLE or t_hist.n < MIN_SAMPLE:
            return insufficient()
        effects = (
            design_effect(control.ratio(base).sample(), control.request_samples[base]),
            design_effect(treatment.ratio(base).sample(), treatment.request_samples[base]),
        )
        bounds = quantile_ratio_bounds(c_hist, t_hist, q, alpha, effects)
        c_q, t_q = c_hist.quantile(q), t_hist.quantile(q)
        if bounds is None or not c_q or t_q is None:
            return insufficient()
        regression, (bound, upper) = t_q / c_q - 1, bounds
    else:
        c, t = control.ratio(metric).sample(), treatment.ratio(metric).sample()
        if c.n < MIN_SAMPLE or t.n < MIN_SAMPLE:
            return insufficient()
        if metric == "error_rate":
            regression = t.mean - c.mean
            variance = t.variance / t.n + c.variance / c.n
            n = c.n + t.n
            half = sequential_halfwidth(variance * n, n, alpha) if variance > 0 else 0.0
            bound, upper = regression - half, regression + half
        else:
            lift = relative_lift(c, t, alpha)
            if lift is None:
                return _without_lift(metric, max_regression, c, t, alpha)
            regression, (bound, upper) = lift.lift, lift.ci_always_valid
    if math.isfinite(bound) and bound > max_regression:
        status = "failing"
    elif regression > max_regression:
        status = "warning"
    else:
        status = "ok"
    return GuardrailCheck(metric, status, regression, bound, upper, max_regression, alpha)


def family_alpha(guardrails: int, treatments: int, alpha: float = ALPHA) -> float:
    """The level of each check when ``guardrails`` × ``treatments`` checks share ``alpha``."""
    return alpha / max(1, guardrails * treatments)


def _without_lift(metric: str, max_regression: float, c: Sample, t: Sample, alpha: float) -> GuardrailCheck:
    """Relative guardrails when no relative lift has a variance: identical constant values (e.g. a
    fixed price per request, or a model that costs nothing in both arms) or a control of zero."""
    if c.mean != 0:  # no variance at all: the difference is exact
        regression = (t.mean - c.mean) / c.mean
        status = "failing" if regression > max_regression else "ok"
        return GuardrailCheck(metric, status, regression, regression, regression, max_regression, alpha)
    if t.mean == 0:
        return GuardrailCheck(metric, "ok", 0.0, 0.0, 0.0, max_regression, alpha)
    # A free control and a treatment that is not: any regression is infinite, so the question is
    # only whether the treatment's mean is above zero on always-valid evidence.
    variance = t.variance / t.n + c.variance / c.n
    n = c.n + t.n
    half = sequential_halfwidth(variance * n, n, alpha) if variance > 0 else 0.0
    shown = t.mean - half > 0
    note = (
        f"the control costs nothing and the treatment {t.mean:.6g} per unit"
        f"{'' if shown else ' (not yet conclusive)'}"
    )
    return GuardrailCheck(
        metric, "failing" if shown else "warning", None, None, None, max_regression, alpha, note
    )
