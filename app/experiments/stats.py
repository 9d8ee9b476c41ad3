"""Experiment statistics as pure functions: Welch's t-test on relative lift (delta method),
always-valid confidence sequences for peeking-safe decisions, and sample ratio mismatch.

No I/O and no numpy: chatver's runtime does not need scipy. The special functions
(Student t, chi-square, normal quantiles) are implemented here and checked against scipy
in tests/experiments/test_stats.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ALPHA = 0.05
SEQUENTIAL_TUNING = 5000  # the sample size around which the confidence sequence is tightest
SRM_ALPHA = 0.001
SRM_MIN_PER_ARM = 8


# --- special functions --------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(df):
        return normal_sf(t)
    t2 = t * t
    if t2 < df:  # near the centre, df/(df+t²) rounds to 1: use the complementary argument
        tail = 0.5 * (1.0 - betainc(0.5, df / 2, t2 / (df + t2)))
    else:
        tail = 0.5 * betainc(df / 2, 0.5, df / (df + t2))
    return tail if t >= 0 else 1.0 - tail


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _t_pdf(t: float, df: float) -> float:
    if math.isinf(df):
        return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))


def _tail_quantile(
    p: float, sf: Callable[[float], float], pdf: Callable[[float], float], start: float
) -> float:
    """x with P(X > x) = 1 - p, by Newton steps kept inside a bisection bracket."""
    target = 1 - p  # work on the upper tail: sf keeps precision where the CDF would round to 1
    low, high = -1.0, 1.0
    while sf(low) < target:
        low *= 2
    while sf(high) > target:
        high *= 2
    x = min(max(start, low), high)
    for _ in range(100):
        error = sf(x) - target  # decreasing in x
        if error > 0:
            low = x
        else:
            high = x
        density = pdf(x)
        step = error / density if density > 0 else 0.0
        candidate = x + step
        if not low < candidate < high or step == 0:
            candidate = (low + high) / 2
        if abs(candidate - x) <= 1e-14 * max(1.0, abs(x)):
            return candidate
        x = candidate
    return x


def normal_ppf(p: float) -> float:
    """Inverse of the standard normal CDF."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    return _tail_quantile(p, normal_sf, lambda z: _t_pdf(z, math.inf), 0.0)


def t_ppf(p: float, df: float) -> float:
    """Inverse of Student's t CDF."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    return _tail_quantile(p, lambda t: t_sf(t, df), lambda t: _t_pdf(t, df), normal_ppf(p))


def _gammainc_lower(s: float, x: float) -> float:
    """Regularized lower incomplete gamma P(s, x)."""
    if x <= 0:
        return 0.0
    if x < s + 1:
        term = total = 1.0 / s
        n = s
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return total * math.exp(-x + s * math.log(x) - math.lgamma(s))
    return 1.0 - _gammainc_upper_cf(s, x)


def _gammainc_upper_cf(s: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = d if abs(d) > tiny else tiny
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(-x + s * math.log(x) - math.lgamma(s)) * h


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square with ``df`` degrees of freedom."""
    if x <= 0:
        return 1.0
    s = df / 2
    if x / 2 < s + 1:
        return 1.0 - _gammainc_lower(s, x / 2)
    return _gammainc_upper_cf(s, x / 2)


# --- summaries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """n observations with their mean and (n-1) sample variance."""

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
        half = t_ppf(1 - alpha / 2, self.n - 1) * math.sqrt(self.variance / self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class Lift:
    """Treatment vs control on one metric, as relative lift (treatment / control - 1)."""

    lift: float
    ci: tuple[float, float]
    p_value: float
    ci_always_valid: tuple[float, float]
    significant: bool  # decided on the always-valid interval, safe under continuous peeking


def sequential_rho(alpha: float = ALPHA, tuning: float = SEQUENTIAL_TUNING) -> float:
    """Mixing parameter of the confidence sequence (Waudby-Smith et al. 2023, eq. 161)."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


def sequential_halfwidth(
    variance_per_obs: float, n: int, alpha: float = ALPHA, tuning: float = SEQUENTIAL_TUNING
) -> float:
    """Half-width of the two-sided always-valid confidence sequence (ibid., eq. 9).

    ``variance_per_obs`` is SE² · n where n is the combined sample size, as GrowthBook does.
    """
    rho = sequential_rho(alpha, tuning)
    nr2 = n * rho * rho
    return math.sqrt(variance_per_obs) * math.sqrt(
        2 * (nr2 + 1) * math.log(math.sqrt(nr2 + 1) / alpha) / (n * rho) ** 2
    )


def welch_dof(control: Sample, treatment: Sample) -> float:
    a, b = control.variance / control.n, treatment.variance / treatment.n
    denominator = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else math.inf


def relative_lift(control: Sample, treatment: Sample, alpha: float = ALPHA) -> Lift | None:
    """Lift with its delta-method variance, Welch's t p-value, and both intervals.

    None when it cannot be estimated: fewer than 2 observations an arm, a zero control mean,
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
    p_value = min(1.0, 2 * t_sf(abs(lift) / se, dof))
    half = t_ppf(1 - alpha / 2, dof) * se
    n = control.n + treatment.n
    half_av = sequential_halfwidth(variance * n, n, alpha)
    always_valid = (lift - half_av, lift + half_av)
    return Lift(
        lift=lift,
        ci=(lift - half, lift + half),
        p_value=p_value,
        ci_always_valid=always_valid,
        significant=always_valid[0] > 0 or always_valid[1] < 0,
    )


def subjects_needed(control: Sample, treatment: Sample, effect: float, alpha: float = ALPHA) -> int | None:
    """Combined subjects at which a relative effect of ``effect`` would clear the always-valid interval,
    assuming the current per-observation variance holds. None when it cannot be estimated."""
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


@dataclass(frozen=True)
class SampleRatio:
    chi2: float
    p_value: float
    flag: bool
    checked: bool  # False until every arm has enough subjects to test


def sample_ratio_mismatch(observed: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Pearson's chi-square of subjects per arm against the configured weights."""
    total = sum(observed)
    weight_total = sum(weights)
    if len(observed) < 2 or total == 0 or weight_total <= 0:
        return SampleRatio(0.0, 1.0, False, False)
    expected = [total * w / weight_total for w in weights]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True) if e > 0)
    p_value = chi2_sf(chi2, len(observed) - 1)
    checked = min(observed) >= SRM_MIN_PER_ARM
    return SampleRatio(chi2, p_value, checked and p_value < SRM_ALPHA, checked)
