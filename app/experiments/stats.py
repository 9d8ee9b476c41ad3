"""Experiment statistics as pure functions (no I/O), on ``scipy.stats`` distributions.

The unit of analysis is the subject, the unit of randomization. Each metric is a ratio of
per-unit sums, Σy / Σd over units (d = 1 for a per-subject mean, d = requests for a
per-request metric such as latency or error rate), so one subject's many requests are not
counted as independent observations. Variances come from the delta method over units
(Deng et al. 2018, "Applying the Delta Method in Metric Analytics"), with optional CUPED
regression adjustment on a pre-period covariate (Deng et al. 2013).

Decisions use always-valid confidence sequences (Waudby-Smith et al. 2023, eq. 9, the
GrowthBook form), so results can be read after every batch; several treatment arms are
controlled with Holm's step-down procedure on always-valid p-values, and percentile
guardrails use a confidence sequence for quantiles (Howard & Ramdas 2022) read from a
fixed-size histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sp

from app.events.aggregates import Histogram

ALPHA = 0.05
SEQUENTIAL_TUNING = 5000  # the sample size around which the confidence sequence is tightest
SRM_ALPHA = 0.001
SRM_MIN_PER_ARM = 8
CUPED_MIN_UNITS = 20  # units with pre-period data, per arm, before adjusting
EDGE_DIGITS = 12  # quantile bounds are bucket-edge ratios; see quantile_ratio_bounds


# --- samples ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """n units with their mean and per-unit variance (for a ratio metric, of its linearization)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_sums(cls, n: int, total: float, squares: float) -> Sample:
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        variance = max((squares - n * mean * mean) / (n - 1), 0.0) if n > 1 else 0.0
        return cls(n, mean, variance)

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        return cls.from_sums(len(values), math.fsum(values), math.fsum(v * v for v in values))

    def mean_ci(self, alpha: float = ALPHA) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        half = float(sp.t.ppf(1 - alpha / 2, self.n - 1)) * math.sqrt(self.variance / self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class RatioSums:
    """Per-unit sums of a ratio metric Σy/Σd, and of a pre-period covariate x (CUPED).

    ``n`` units; y, d are each unit's numerator and denominator; x its pre-period value
    (0 for units without one; ``nx`` counts the units that have one).
    """

    n: int
    y: float
    yy: float
    d: float
    dd: float
    yd: float
    x: float = 0.0
    xx: float = 0.0
    yx: float = 0.0
    dx: float = 0.0
    nx: int = 0

    @property
    def ratio(self) -> float | None:
        return self.y / self.d if self.d > 0 else None

    def _cov(self, ab: float, a: float, b: float) -> float:
        return (ab - a * b / self.n) / (self.n - 1)

    def linearized(self) -> tuple[float, float] | None:
        """(variance of the linearized unit value (y - R·d)/d̄, its covariance with x)."""
        ratio = self.ratio
        if ratio is None or self.n < 2:
            return None
        d_mean = self.d / self.n
        var_y, var_d = self._cov(self.yy, self.y, self.y), self._cov(self.dd, self.d, self.d)
        cov_yd = self._cov(self.yd, self.y, self.d)
        variance = max(var_y - 2 * ratio * cov_yd + ratio * ratio * var_d, 0.0) / (d_mean * d_mean)
        cov_x = (self._cov(self.yx, self.y, self.x) - ratio * self._cov(self.dx, self.d, self.x)) / d_mean
        return variance, cov_x

    @property
    def x_variance(self) -> float:
        return max(self._cov(self.xx, self.x, self.x), 0.0) if self.n > 1 else 0.0

    def sample(self, adjustment: Cuped | None = None) -> Sample:
        """This arm as a Sample of units: the ratio, and the per-unit variance of its estimate."""
        ratio, linear = self.ratio, self.linearized()
        if ratio is None or linear is None:
            return Sample(self.n, ratio or 0.0, 0.0)
        variance, cov_x = linear
        if adjustment is None:
            return Sample(self.n, ratio, variance)
        theta = adjustment.theta
        adjusted = variance - 2 * theta * cov_x + theta * theta * self.x_variance
        # R̂ - θ(x̄_arm - x̄_all): the covariate's mean differs between arms only by chance.
        return Sample(self.n, ratio - theta * (self.x / self.n - adjustment.x_mean), max(adjusted, 0.0))


@dataclass(frozen=True)
class Cuped:
    """The pooled regression of the linearized metric on its pre-period value."""

    theta: float
    x_mean: float


def cuped_adjustment(arms: Sequence[RatioSums]) -> Cuped | None:
    """θ = Cov(L, x) / Var(x) pooled within arms; None when the pre-period cannot help."""
    if any(arm.nx < CUPED_MIN_UNITS or arm.n < 2 for arm in arms):
        return None
    covariance = variance = 0.0
    for arm in arms:
        linear = arm.linearized()
        if linear is None:
            return None
        covariance += linear[1] * (arm.n - 1)
        variance += arm.x_variance * (arm.n - 1)
    if variance <= 0:
        return None
    units = sum(arm.n for arm in arms)
    return Cuped(theta=covariance / variance, x_mean=sum(arm.x for arm in arms) / units)


def variance_reduction(plain: Sample, adjusted: Sample) -> float | None:
    """1 - adjusted variance / plain variance: the share of variance CUPED removed."""
    if plain.variance <= 0:
        return None
    return 1 - adjusted.variance / plain.variance


# --- lifts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lift:
    """Treatment vs control on one metric, as relative lift (treatment / control - 1)."""

    lift: float
    ci: tuple[float, float]
    p_value: float
    ci_always_valid: tuple[float, float]
    p_value_always_valid: float
    significant: bool  # decided on the always-valid interval, safe under continuous peeking


def sequential_rho(alpha: float = ALPHA, tuning: float = SEQUENTIAL_TUNING) -> float:
    """Mixing parameter of the confidence sequence (Waudby-Smith et al. 2023, eq. 161)."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


DESIGN_RHO = sequential_rho()


def sequential_halfwidth(variance_per_obs: float, n: float, alpha: float = ALPHA) -> float:
    """Half-width of the two-sided always-valid confidence sequence (ibid., eq. 9).

    ``variance_per_obs`` is SE² · n where n is the combined sample size, as GrowthBook does.
    The mixing parameter is tuned once, at α = 0.05, so sequences at other levels (Holm,
    Bonferroni) are nested and invert to a p-value.
    """
    nr2 = n * DESIGN_RHO * DESIGN_RHO
    return math.sqrt(variance_per_obs) * math.sqrt(
        2 * (nr2 + 1) * math.log(math.sqrt(nr2 + 1) / alpha) / (n * DESIGN_RHO) ** 2
    )


def always_valid_p(estimate: float, variance_per_obs: float, n: float) -> float:
    """The smallest α whose confidence sequence excludes 0: valid at any stopping time."""
    if variance_per_obs <= 0:
        return 0.0 if estimate != 0 else 1.0
    nr2 = n * DESIGN_RHO * DESIGN_RHO
    exponent = estimate * estimate * (n * DESIGN_RHO) ** 2 / (2 * variance_per_obs * (nr2 + 1))
    return min(1.0, math.sqrt(nr2 + 1) * math.exp(-exponent))


def welch_dof(control: Sample, treatment: Sample) -> float:
    a, b = control.variance / control.n, treatment.variance / treatment.n
    denominator = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else math.inf


def relative_lift(control: Sample, treatment: Sample, alpha: float = ALPHA) -> Lift | None:
    """Lift with its delta-method variance, Welch's t p-value, and both intervals.

    None when it cannot be estimated: fewer than 2 units an arm, a zero control mean,
    or no variance at all.
    """
    if control.n < 2 or treatment.n < 2 or control.mean == 0:
        return None
    mc, mt = control.mean, treatment.mean
    variance = treatment.variance / (mc * mc * treatment.n) + control.variance * mt * mt / (mc**4 * control.n)
    if variance <= 0:
        return None
    se = math.sqrt(variance)
    lift = (mt - mc) / mc
    dof = welch_dof(control, treatment)
    p_value = min(1.0, 2 * float(sp.t.sf(abs(lift) / se, dof)))
    half = float(sp.t.ppf(1 - alpha / 2, dof)) * se
    n = control.n + treatment.n
    half_av = sequential_halfwidth(variance * n, n, alpha)
    always_valid = (lift - half_av, lift + half_av)
    return Lift(
        lift=lift,
        ci=(lift - half, lift + half),
        p_value=p_value,
        ci_always_valid=always_valid,
        p_value_always_valid=always_valid_p(lift, variance * n, n),
        significant=always_valid[0] > 0 or always_valid[1] < 0,
    )


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure: which hypotheses are rejected, and the adjusted p-values.

    Controls the family-wise error rate at ``alpha`` for any dependence between the tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return [p < alpha for p in adjusted], adjusted


def subjects_needed(control: Sample, treatment: Sample, effect: float, alpha: float = ALPHA) -> int | None:
    """Combined subjects at which a relative effect of ``effect`` would clear the always-valid interval,
    assuming the current per-unit variance holds. None when it cannot be estimated."""
    if control.n < 2 or treatment.n < 2 or control.mean == 0 or effect == 0:
        return None
    n_now = control.n + treatment.n
    share_c, share_t = control.n / n_now, treatment.n / n_now
    mc, mt = control.mean, control.mean * (1 + effect)
    per_obs = treatment.variance / (mc * mc * share_t) + control.variance * mt * mt / (mc**4 * share_c)
    if per_obs <= 0:
        return None
    low, high = 2, 10**12
    if sequential_halfwidth(per_obs, high, alpha) >= abs(effect):
        return None
    while low < high:
        mid = (low + high) // 2
        if sequential_halfwidth(per_obs, mid, alpha) < abs(effect):
            high = mid
        else:
            low = mid + 1
    return low


# --- quantiles ---------------------------------------------------------------------------------


def quantile_bounds(
    histogram: Histogram, q: float, alpha: float, design_effect: float = 1.0
) -> tuple[float, float] | None:
    """An always-valid interval for the q-quantile (Howard & Ramdas 2022, the fixed-quantile sequence).

    The share of values at or below the true quantile is a mean of Bernoulli(q) indicators, so a
    confidence sequence for that mean (variance q(1-q)) maps through the empirical distribution to
    one for the quantile. Observations are clustered by subject: the sample size is divided by the
    design effect measured on the mean of the same metric. Bucket edges keep the bounds conservative.
    None while the upper bound would fall past the largest value seen.
    """
    n = histogram.n
    if n == 0:
        return None
    n_eff = n / max(design_effect, 1.0)
    if n_eff < 2:
        return None
    spread = sequential_halfwidth(q * (1 - q), n_eff, alpha)
    low_q, high_q = q - spread, q + spread
    if high_q >= 1:
        return None
    low = 0.0 if low_q <= 0 else histogram.edges_at_rank(low_q * n)[0]
    return low, histogram.edges_at_rank(math.ceil(high_q * n))[1]


def quantile_ratio_bounds(
    control: Histogram,
    treatment: Histogram,
    q: float,
    alpha: float,
    design_effects: tuple[float, float] = (1.0, 1.0),
) -> tuple[float, float] | None:
    """Always-valid bounds on treatment's q-quantile / control's - 1 (each arm's sequence at α/2).

    The bounds are ratios of bucket edges, i.e. powers of the bucket width minus one, so two edges
    that are the same value must give exactly 0 (a tie is no evidence of a regression): the
    floating-point noise of computing them (~1e-16) is rounded away. Distinct edge ratios differ by
    at least 2%, far above the rounding.
    """
    c = quantile_bounds(control, q, alpha / 2, design_effects[0])
    t = quantile_bounds(treatment, q, alpha / 2, design_effects[1])
    if c is None or t is None or c[0] <= 0:
        return None
    return round(t[0] / c[1] - 1, EDGE_DIGITS), round(t[1] / c[0] - 1, EDGE_DIGITS)


def design_effect(clustered: Sample, requests: Sample) -> float:
    """Variance of a per-request mean with subjects as units over its variance as if iid (≥ 1)."""
    if clustered.n < 2 or requests.n < 2 or requests.variance <= 0:
        return 1.0
    return max(1.0, (clustered.variance / clustered.n) / (requests.variance / requests.n))


# --- sample ratio --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRatio:
    chi2: float
    p_value: float
    flag: bool
    checked: bool  # False until every arm is expected to have enough units to test


def sample_ratio_mismatch(observed: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Pearson's chi-square of units per arm against the configured weights."""
    total = sum(observed)
    weight_total = sum(weights)
    if len(observed) < 2 or total == 0 or weight_total <= 0:
        return SampleRatio(0.0, 1.0, False, False)
    expected = [total * w / weight_total for w in weights]
    chi2, p_value = sp.chisquare(observed, expected)
    # Chi-square needs enough *expected* units per arm; an arm that gets none at all is the loudest mismatch.
    checked = min(expected) >= SRM_MIN_PER_ARM
    return SampleRatio(float(chi2), float(p_value), checked and p_value < SRM_ALPHA, checked)
