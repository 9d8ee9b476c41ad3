"""Do chatver's experiment decisions hold up when results are read after every batch? A seeded simulation.

Every simulated experiment is checked after each batch of new subjects (a "look"), the way a
team reading the dashboard every day would use it, and an experiment counts as decided when
its rule fired at *any* look. All statistics are chatver's own functions
(``app.experiments.stats``), called the way ``results.py`` and ``guardrails.py`` call them.

1. Clustered A/A. Each subject sends 1–50 requests (uniform) and rates every answer, with a
   thumbs-up propensity of its own drawn from Beta(1.5, 3.5) (mean 0.3). False-positive rate
   of chatver's subject-level analysis (a ratio of per-subject sums, delta-method variance,
   always-valid interval) against the old per-request analysis (every rating an independent
   observation, same always-valid rule), and naive fixed-horizon p < 0.05 peeking for both.
2. A/A/A on the same data: the family-wise false-positive rate of two treatment arms, with
   Holm on the always-valid p-values (chatver) and with each arm at the full α.
3. Power for a true +20% relative lift in thumbs-up (each treatment subject's propensity × 1.2,
   capped at 1: mean 0.3598), subject-level always-valid rule.
4. Latency guardrail ``latency_ms.p95``, max_regression 0.0: lognormal latencies (median
   800 ms, σ 0.5 within a subject) with a lognormal multiplier per subject (σ 0.3), so a
   subject's requests are correlated; treatment latencies × 1.15. Power (share flagged
   "failing" at some look) and the false-alarm rate of the A/A version.
5. CUPED: a per-subject metric (normal, mean 10, sd 3) and a pre-period value correlated 0.5
   with it. Ratio of interval widths with and without CUPED (theory: √(1 - 0.5²) ≈ 0.866),
   and power with and without CUPED for a small true effect.

Seeded: each chunk of experiments draws from its own stream (seed, scenario, chunk), so the
numbers do not depend on --jobs. Progress goes to stderr, Markdown tables to stdout.

    .venv/bin/python scripts/bench/sequential_sim.py [--experiments 2000] [--looks 20] [--batch 25]
        [--latency-experiments 1000] [--latency-batch 100] [--jobs 2] [--seed 20261130]
        [--plot docs/benchmarks/sequential_sim.png]
"""

# ruff: noqa: RUF001  (α, ρ, ×, – in printed tables and plot labels are deliberate)
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.events.aggregates import HISTOGRAM_FLOOR, HISTOGRAM_GAMMA, Histogram  # noqa: E402
from app.experiments.stats import (  # noqa: E402
    ALPHA,
    RatioSums,
    Sample,
    cuped_adjustment,
    design_effect,
    holm,
    quantile_ratio_bounds,
    relative_lift,
)

CHUNK = 50  # experiments per task: the unit of seeding and of parallel work
MAX_REQUESTS = 50  # requests per subject, uniform on 1..MAX_REQUESTS
PROPENSITY = (1.5, 3.5)  # Beta parameters of a subject's thumbs-up propensity (mean 0.3)
LATENCY_MEDIAN_MS = 800.0
LATENCY_SIGMA_SUBJECT = 0.3  # log-sd of a subject's latency multiplier
LATENCY_SIGMA_REQUEST = 0.5  # log-sd of a request around its subject
HISTOGRAM_BUCKETS = 1400  # covers 0.01 ms to ~10^10 ms at chatver's 2% bucket width
CUPED_MEAN, CUPED_SD = 10.0, 3.0

SCENARIO_NULL, SCENARIO_THUMBS, SCENARIO_LATENCY, SCENARIO_CUPED = 1, 2, 3, 4


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A Monte-Carlo share: hits out of n experiments."""

    hits: int
    n: int

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        return math.sqrt(self.rate * (1 - self.rate) / self.n) if self.n else math.nan

    def __str__(self) -> str:
        return f"{self.rate:.1%} ± {1.96 * self.se:.1%}"


def first_look(decided: np.ndarray) -> Rate:
    return Rate(int(np.count_nonzero(decided)), int(decided.size))


def mean_look(decided: np.ndarray) -> float:
    """Mean look at which the decided experiments were decided (looks are 1-based, 0 = never)."""
    hits = decided[decided > 0]
    return float(hits.mean()) if hits.size else math.nan


def by_look(decided: np.ndarray, looks: int) -> np.ndarray:
    """Share of experiments decided at or before each look 1..looks."""
    return np.array(
        [np.count_nonzero((decided > 0) & (decided <= k)) / decided.size for k in range(1, looks + 1)]
    )


@dataclass(frozen=True)
class NullRun:
    """Clustered A/A/A experiments. Each array holds, per experiment, the first look at which the
    rule fired (0 = never). ``subject``/``request``: arm B vs A; ``holm``/``unadjusted``: B or C vs A."""

    subject: np.ndarray
    request: np.ndarray
    subject_naive: np.ndarray
    request_naive: np.ndarray
    holm: np.ndarray
    unadjusted: np.ndarray
    design_effect: np.ndarray  # of the thumbs-up rate at the last look, B vs A's arms


@dataclass(frozen=True)
class PowerRun:
    detected: np.ndarray  # first look of a significant lift (0 = never)
    lift: np.ndarray  # the estimated lift at that look (nan when never)


@dataclass(frozen=True)
class LatencyRun:
    failing: np.ndarray  # first look at which the guardrail was "failing" (0 = never)
    design_effect: np.ndarray  # of the control's mean latency at the last look


@dataclass(frozen=True)
class CupedRun:
    plain: np.ndarray  # first look of a significant lift without CUPED (0 = never)
    cuped: np.ndarray  # with CUPED
    width_ratio: np.ndarray  # always-valid interval width, CUPED / plain, at the last look
    width_ratio_fixed: np.ndarray  # the same for the fixed-horizon interval


R = TypeVar("R")


def _run(
    chunk_fn: Callable[..., R],
    scenario: int,
    experiments: int,
    seed: int,
    jobs: int,
    label: str,
    **params: Any,
) -> R:
    """Run ``experiments`` in chunks of CHUNK (in ``jobs`` processes) and concatenate the results."""
    sizes = [min(CHUNK, experiments - start) for start in range(0, experiments, CHUNK)]
    stream = (seed, scenario, int(params.get("batch", 0)))
    tasks = [(chunk_fn, size, (*stream, index), params) for index, size in enumerate(sizes)]
    results: list[Any] = [None] * len(tasks)
    started = time.perf_counter()

    def report(done: int) -> None:
        print(
            f"\r  {label}: {done}/{len(tasks)} chunks, {time.perf_counter() - started:.0f}s",
            end="" if done < len(tasks) else "\n",
            file=sys.stderr,
            flush=True,
        )

    if jobs <= 1:
        for index, task in enumerate(tasks):
            results[index] = _call(task)
            report(index + 1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_call, task): index for index, task in enumerate(tasks)}
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                report(done)
    cls = type(results[0])
    return cls(**{f.name: np.concatenate([getattr(r, f.name) for r in results]) for f in fields(cls)})


def _call(task: tuple[Callable[..., Any], int, tuple[int, ...], dict[str, Any]]) -> Any:
    chunk_fn, size, entropy, params = task
    return chunk_fn(size, np.random.default_rng(list(entropy)), **params)


# --- traffic ------------------------------------------------------------------------------------------


class ArmSums:
    """Per-experiment running sums of one arm's per-subject (y, d) pairs: y thumbs ups, d ratings."""

    def __init__(self, experiments: int) -> None:
        self.values = np.zeros((6, experiments))  # n, y, yy, d, dd, yd

    def add(self, y: np.ndarray, d: np.ndarray) -> None:
        """Add one batch: arrays of shape (experiments, subjects)."""
        self.values += np.stack(
            [
                np.full(y.shape[0], y.shape[1]),
                y.sum(1),
                (y * y).sum(1),
                d.sum(1),
                (d * d).sum(1),
                (y * d).sum(1),
            ]
        )

    def ratio(self, e: int) -> RatioSums:
        n, y, yy, d, dd, yd = self.values[:, e]
        return RatioSums(int(n), y, yy, d, dd, yd)

    def per_request(self, e: int) -> Sample:
        """The old analysis: every rating an independent Bernoulli observation."""
        _, y, _, d, _, _ = self.values[:, e]
        return Sample.from_sums(int(d), y, y)


def _thumbs(
    rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(thumbs ups, ratings) per subject: 1–50 ratings, a Beta propensity each (× scale, at most 1)."""
    ratings = rng.integers(1, MAX_REQUESTS + 1, shape)
    propensity = np.minimum(rng.beta(*PROPENSITY, shape) * scale, 1.0)
    return rng.binomial(ratings, propensity).astype(float), ratings.astype(float)


def histogram_buckets(values: np.ndarray) -> np.ndarray:
    """``app.events.aggregates.histogram_bucket`` for an array (checked equal in the tests)."""
    safe = np.maximum(values, HISTOGRAM_FLOOR)
    buckets = 1 + np.floor(np.log(safe / HISTOGRAM_FLOOR) / math.log(HISTOGRAM_GAMMA)).astype(np.int64)
    return np.where(values < HISTOGRAM_FLOOR, 0, np.minimum(buckets, HISTOGRAM_BUCKETS - 1))


class LatencyArm:
    """Per-experiment running latency sums of one arm: per-subject ratio sums (y = Σ latency,
    d = requests), the per-request sum of squares, and the histogram bucket counts."""

    def __init__(self, experiments: int) -> None:
        self.sums = ArmSums(experiments)
        self.squares = np.zeros(experiments)
        self.counts = np.zeros((experiments, HISTOGRAM_BUCKETS), dtype=np.int64)

    def add(self, rng: np.random.Generator, subjects: int, multiplier: float) -> None:
        experiments = self.squares.size
        requests = rng.integers(1, MAX_REQUESTS + 1, (experiments, subjects))
        subject_factor = np.exp(LATENCY_SIGMA_SUBJECT * rng.standard_normal(experiments * subjects))
        unit = np.repeat(np.arange(experiments * subjects), requests.ravel())
        latency = (
            LATENCY_MEDIAN_MS
            * multiplier
            * subject_factor[unit]
            * np.exp(LATENCY_SIGMA_REQUEST * rng.standard_normal(unit.size))
        )
        per_subject = np.bincount(unit, latency, experiments * subjects).reshape(experiments, subjects)
        self.sums.add(per_subject, requests.astype(float))
        experiment = unit // subjects
        self.squares += np.bincount(experiment, latency * latency, experiments)
        cells = experiment * HISTOGRAM_BUCKETS + histogram_buckets(latency)
        self.counts += np.bincount(cells, minlength=experiments * HISTOGRAM_BUCKETS).reshape(
            experiments, HISTOGRAM_BUCKETS
        )

    def evidence(self, e: int) -> tuple[RatioSums, Sample, Histogram]:
        ratio = self.sums.ratio(e)
        requests = Sample.from_sums(int(ratio.d), ratio.y, float(self.squares[e]))
        row = self.counts[e]
        buckets = np.flatnonzero(row)
        return ratio, requests, Histogram(dict(zip(buckets.tolist(), row[buckets].tolist(), strict=True)))


# --- chunks (one seeded stream each) -----------------------------------------------------------------


def _null_chunk(experiments: int, rng: np.random.Generator, *, looks: int, batch: int) -> NullRun:
    arms = [ArmSums(experiments) for _ in range(3)]
    first = {name: np.zeros(experiments, dtype=np.int64) for name in ("s", "r", "sn", "rn", "h", "u")}
    for look in range(1, looks + 1):
        for arm in arms:
            arm.add(*_thumbs(rng, (experiments, batch)))
        for e in range(experiments):
            if not (first["s"][e] and first["sn"][e] and first["h"][e] and first["u"][e]):
                control = arms[0].ratio(e).sample()
                lifts = [relative_lift(control, arm.ratio(e).sample()) for arm in arms[1:]]
                b = lifts[0]
                if b is not None:
                    if b.significant and not first["s"][e]:
                        first["s"][e] = look
                    if b.p_value < ALPHA and not first["sn"][e]:
                        first["sn"][e] = look
                if any(lift is not None and lift.significant for lift in lifts) and not first["u"][e]:
                    first["u"][e] = look
                p_values = [lift.p_value_always_valid if lift is not None else 1.0 for lift in lifts]
                if any(holm(p_values, ALPHA)[0]) and not first["h"][e]:
                    first["h"][e] = look
            if not (first["r"][e] and first["rn"][e]):
                old = relative_lift(arms[0].per_request(e), arms[1].per_request(e))
                if old is not None:
                    if old.significant and not first["r"][e]:
                        first["r"][e] = look
                    if old.p_value < ALPHA and not first["rn"][e]:
                        first["rn"][e] = look
    effects = np.array(
        [design_effect(arms[0].ratio(e).sample(), arms[0].per_request(e)) for e in range(experiments)]
    )
    return NullRun(first["s"], first["r"], first["sn"], first["rn"], first["h"], first["u"], effects)


def _thumbs_chunk(
    experiments: int, rng: np.random.Generator, *, looks: int, batch: int, lift: float
) -> PowerRun:
    control, treatment = ArmSums(experiments), ArmSums(experiments)
    detected = np.zeros(experiments, dtype=np.int64)
    estimate = np.full(experiments, np.nan)
    for look in range(1, looks + 1):
        control.add(*_thumbs(rng, (experiments, batch)))
        treatment.add(*_thumbs(rng, (experiments, batch), 1 + lift))
        for e in np.flatnonzero(detected == 0):
            result = relative_lift(control.ratio(e).sample(), treatment.ratio(e).sample())
            if result is not None and result.significant:
                detected[e], estimate[e] = look, result.lift
    return PowerRun(detected, estimate)


def percentile_bound(
    control: LatencyArm, treatment: LatencyArm, e: int, q: float, alpha: float
) -> float | None:
    """The always-valid lower bound of the q-quantile regression as ``check_guardrail`` computes it
    (None while it reports insufficient data); the guardrail is failing when it exceeds max_regression."""
    c_ratio, c_requests, c_hist = control.evidence(e)
    t_ratio, t_requests, t_hist = treatment.evidence(e)
    effects = (design_effect(c_ratio.sample(), c_requests), design_effect(t_ratio.sample(), t_requests))
    bounds = quantile_ratio_bounds(c_hist, t_hist, q, alpha, effects)
    if bounds is None or not c_hist.quantile(q) or t_hist.quantile(q) is None:
        return None
    return bounds[0] if math.isfinite(bounds[0]) else None


def _latency_chunk(
    experiments: int,
    rng: np.random.Generator,
    *,
    looks: int,
    batch: int,
    regression: float,
    q: float,
    tolerance: float,
    alpha: float,
) -> LatencyRun:
    control, treatment = LatencyArm(experiments), LatencyArm(experiments)
    failing = np.zeros(experiments, dtype=np.int64)
    for look in range(1, looks + 1):
        control.add(rng, batch, 1.0)
        treatment.add(rng, batch, 1 + regression)
        for e in np.flatnonzero(failing == 0):
            bound = percentile_bound(control, treatment, e, q, alpha)
            if bound is not None and bound > tolerance:
                failing[e] = look
    effects = np.array(
        [design_effect(control.sums.ratio(e).sample(), control.evidence(e)[1]) for e in range(experiments)]
    )
    return LatencyRun(failing, effects)


def _cuped_chunk(
    experiments: int, rng: np.random.Generator, *, looks: int, batch: int, effect: float, rho: float
) -> CupedRun:
    sums = np.zeros((2, 6, experiments))  # arm × (y, yy, x, xx, yx, n)
    plain_first = np.zeros(experiments, dtype=np.int64)
    cuped_first = np.zeros(experiments, dtype=np.int64)
    width = np.full(experiments, np.nan)
    width_fixed = np.full(experiments, np.nan)
    for look in range(1, looks + 1):
        for arm in (0, 1):
            common = rng.standard_normal((experiments, batch))
            x = CUPED_MEAN + CUPED_SD * common
            own = rng.standard_normal((experiments, batch))
            y = CUPED_MEAN * (1 + effect * arm) + CUPED_SD * (rho * common + math.sqrt(1 - rho * rho) * own)
            sums[arm] += np.stack(
                [
                    y.sum(1),
                    (y * y).sum(1),
                    x.sum(1),
                    (x * x).sum(1),
                    (y * x).sum(1),
                    np.full(experiments, batch),
                ]
            )
        last = look == looks
        for e in range(experiments):
            if plain_first[e] and cuped_first[e] and not last:
                continue
            arms = []
            for arm in (0, 1):
                y, yy, x, xx, yx, n = sums[arm, :, e]
                # A per-subject mean: d = 1 for every subject (as results.py's per_subject sums).
                arms.append(RatioSums(int(n), y, yy, n, n, y, x, xx, yx, x, int(n)))
            adjustment = cuped_adjustment(arms)
            plain = relative_lift(arms[0].sample(), arms[1].sample())
            adjusted = relative_lift(arms[0].sample(adjustment), arms[1].sample(adjustment))
            if plain is not None and plain.significant and not plain_first[e]:
                plain_first[e] = look
            if (
                adjustment is not None
                and adjusted is not None
                and adjusted.significant
                and not cuped_first[e]
            ):
                cuped_first[e] = look
            if last and plain is not None and adjusted is not None and adjustment is not None:
                width[e] = _width(adjusted.ci_always_valid) / _width(plain.ci_always_valid)
                width_fixed[e] = _width(adjusted.ci) / _width(plain.ci)
    return CupedRun(plain_first, cuped_first, width, width_fixed)


def _width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


# --- scenarios --------------------------------------------------------------------------------------


def clustered_null(experiments: int, *, looks: int, batch: int, seed: int, jobs: int = 1) -> NullRun:
    """Scenarios 1 and 2: clustered A/A/A experiments (arm B vs A is the A/A test)."""
    label = f"clustered A/A/A, {batch}/arm/look"
    return _run(_null_chunk, SCENARIO_NULL, experiments, seed, jobs, label, looks=looks, batch=batch)


def thumbs_power(
    experiments: int, *, looks: int, batch: int, lift: float = 0.20, seed: int, jobs: int = 1
) -> PowerRun:
    """Scenario 3: a true relative lift in every treatment subject's thumbs-up propensity."""
    return _run(
        _thumbs_chunk,
        SCENARIO_THUMBS,
        experiments,
        seed,
        jobs,
        f"thumbs-up {lift:+.0%}",
        looks=looks,
        batch=batch,
        lift=lift,
    )


def latency_guardrail(
    experiments: int,
    *,
    looks: int,
    batch: int,
    regression: float,
    seed: int,
    q: float = 0.95,
    tolerance: float = 0.0,
    alpha: float = ALPHA,
    jobs: int = 1,
) -> LatencyRun:
    """Scenario 4: guardrail ``latency_ms.p{q}`` with max_regression ``tolerance`` (alpha = the
    guardrail family's level; 0.05 for one guardrail and one treatment arm)."""
    return _run(
        _latency_chunk,
        SCENARIO_LATENCY + (0 if regression == 0 else 10),
        experiments,
        seed,
        jobs,
        f"p{round(q * 100)} latency {regression:+.0%}",
        looks=looks,
        batch=batch,
        regression=regression,
        q=q,
        tolerance=tolerance,
        alpha=alpha,
    )


def cuped_power(
    experiments: int, *, looks: int, batch: int, effect: float, seed: int, rho: float = 0.5, jobs: int = 1
) -> CupedRun:
    """Scenario 5: a per-subject metric with a pre-period covariate correlated ``rho`` with it."""
    return _run(
        _cuped_chunk,
        SCENARIO_CUPED,
        experiments,
        seed,
        jobs,
        f"CUPED {effect:+.0%}",
        looks=looks,
        batch=batch,
        effect=effect,
        rho=rho,
    )


# --- report -----------------------------------------------------------------------------------------


def _plot(path: Path, args: argparse.Namespace, nulls: dict[int, NullRun], curves: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = np.arange(1, args.looks + 1)
    short, long = nulls[args.batch], nulls[args.long_batch]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    for label, decided, style in (
        ("per-request, always-valid (old analysis)", long.request, "C3-"),
        ("per-request, naive p<0.05", long.request_naive, "C3:"),
        ("subject-level, naive p<0.05", long.subject_naive, "C1:"),
        ("A/A/A, always-valid, no Holm", long.unadjusted, "C4--"),
        ("A/A/A, Holm on always-valid p (chatver)", long.holm, "C2-"),
        ("subject-level, always-valid (chatver)", long.subject, "C0-"),
        (f"subject-level, always-valid, {args.batch}/arm/look", short.subject, "C0--"),
    ):
        left.plot(looks, 100 * by_look(decided, args.looks), style, lw=2, label=label)
    left.axhline(5, color="k", lw=1, ls="-.", label="α = 5%")
    left.set(
        title=f"Clustered A/A: share of experiments declared significant so far\n"
        f"({args.long_batch} new subjects per arm per look unless noted)",
        xlabel="look",
        ylabel="false positives so far (%)",
        ylim=(0, 100),
        xlim=(1, args.looks),
    )
    left.set_yticks(range(0, 101, 10))
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="center right")
    for label, (decided, style) in curves.items():
        right.plot(looks, 100 * by_look(decided, args.looks), style, lw=2, label=label)
    right.axhline(5, color="k", lw=1, ls="-.", label="5%")
    right.set(
        title="Power and false alarms: share decided so far (chatver's rules)",
        xlabel="look",
        ylabel="decided so far (%)",
        ylim=(0, 100),
        xlim=(1, args.looks),
    )
    right.set_yticks(range(0, 101, 10))
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"  plot written to {path}", file=sys.stderr)


def _row(label: str, decided: np.ndarray, batch: int) -> str:
    look = mean_look(decided)
    if not math.isfinite(look):
        return f"| {label} | {decided.size:,} | {first_look(decided)} | – | – |"
    return f"| {label} | {decided.size:,} | {first_look(decided)} | {look:.1f} | {look * batch:,.0f} |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--experiments", type=int, default=2000, help="experiments per thumbs-up/CUPED scenario"
    )
    parser.add_argument("--looks", type=int, default=20, help="looks (batches) per experiment")
    parser.add_argument(
        "--batch", type=int, default=25, help="new subjects per arm per look (thumbs-up, CUPED)"
    )
    parser.add_argument("--long-batch", type=int, default=250, help="the same for the longer A/A/A horizon")
    parser.add_argument(
        "--latency-experiments", type=int, default=1000, help="experiments per latency scenario"
    )
    parser.add_argument(
        "--latency-batch", type=int, default=100, help="new subjects per arm per look (latency)"
    )
    parser.add_argument("--lift", type=float, default=0.20, help="true thumbs-up lift for the power scenario")
    parser.add_argument("--regression", type=float, default=0.15, help="true p95 latency regression")
    parser.add_argument(
        "--cuped-effect", type=float, default=0.05, help="true lift for the CUPED power scenario"
    )
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--plot", type=Path, help="write a PNG of the curves here (needs matplotlib)")
    args = parser.parse_args()
    common = {"looks": args.looks, "seed": args.seed, "jobs": args.jobs}
    started = time.perf_counter()

    batches = (args.batch, args.long_batch)
    nulls = {batch: clustered_null(args.experiments, batch=batch, **common) for batch in batches}
    power = thumbs_power(args.experiments, batch=args.batch, lift=args.lift, **common)
    lat_aa = latency_guardrail(args.latency_experiments, batch=args.latency_batch, regression=0.0, **common)
    lat = latency_guardrail(
        args.latency_experiments, batch=args.latency_batch, regression=args.regression, **common
    )
    cuped = cuped_power(args.experiments, batch=args.batch, effect=args.cuped_effect, **common)
    elapsed = time.perf_counter() - started

    print(
        f"\nSeed {args.seed}, {args.looks} looks per experiment (decision = at any look), "
        f"{elapsed:.0f} s with {args.jobs} process(es) on {platform.machine()} with {os.cpu_count()} cores, "
        f"{date.today().isoformat()}. ± is the 95% Monte-Carlo interval (1.96 standard errors).\n"
    )
    print(
        f"**1. Clustered A/A**, {args.experiments:,} experiments per column: each subject rates all of "
        "its 1–50 answers with its own Beta(1.5, 3.5) thumbs-up propensity. Share of experiments "
        "ever declared significant (B vs A):\n"
    )
    heads = [f"{b} subjects/arm/look (up to {args.looks * b:,})" for b in batches]
    print(f"| analysis | rule | {' | '.join(heads)} |")
    print("|---|---|---:|---:|")
    for label, rule, attr in (
        (
            "subject-level, ratio of per-subject sums (chatver)",
            "always-valid (chatver's decision)",
            "subject",
        ),
        (
            "subject-level, ratio of per-subject sums (chatver)",
            "naive: p < 0.05 at any look",
            "subject_naive",
        ),
        ("per-request, every rating independent (old)", "always-valid", "request"),
        ("per-request, every rating independent (old)", "naive: p < 0.05 at any look", "request_naive"),
    ):
        cells = " | ".join(str(first_look(getattr(nulls[b], attr))) for b in batches)
        print(f"| {label} | {rule} | {cells} |")
    cells = " | ".join(
        f"{nulls[b].design_effect.mean():.1f} ({np.percentile(nulls[b].design_effect, 5):.1f}–"
        f"{np.percentile(nulls[b].design_effect, 95):.1f})"
        for b in batches
    )
    print(f"| design effect of the thumbs-up rate at the last look | mean (5th–95th pct) | {cells} |")
    print()
    print(
        "**2. A/A/A** (control + 2 treatments, the same simulated experiments): family-wise "
        "false-positive rate, any treatment ever declared significant:\n"
    )
    print(f"| decision rule | {' | '.join(heads)} |")
    print("|---|---:|---:|")
    for label, attr in (
        ("Holm on the always-valid p-values (chatver)", "holm"),
        (f"always-valid, each arm at the full α = {ALPHA}", "unadjusted"),
    ):
        print(f"| {label} | {' | '.join(str(first_look(getattr(nulls[b], attr))) for b in batches)} |")
    print()
    print("**3–5. Power and false alarms** (chatver's always-valid rules):\n")
    print("| scenario | experiments | share decided | mean look of decision | subjects per arm then |")
    print("|---|---:|---:|---:|---:|")
    lat_label = f"{args.latency_batch}/arm/look, max_regression 0.0"
    for label, decided, batch in (
        (
            f"thumbs-up +{args.lift:.0%} (propensity × {1 + args.lift:g}, ≤ 1), {args.batch}/arm/look",
            power.detected,
            args.batch,
        ),
        (
            f"`latency_ms.p95` failing, p95 +{args.regression:.0%}, {lat_label}",
            lat.failing,
            args.latency_batch,
        ),
        (f"`latency_ms.p95` failing, A/A (false alarms), {lat_label}", lat_aa.failing, args.latency_batch),
        (
            f"per-subject metric +{args.cuped_effect:.0%}, without CUPED, {args.batch}/arm/look",
            cuped.plain,
            args.batch,
        ),
        (
            f"per-subject metric +{args.cuped_effect:.0%}, with CUPED (pre-period ρ = 0.5)",
            cuped.cuped,
            args.batch,
        ),
    ):
        print(_row(label, decided, batch))
    print()
    print(
        f"Thumbs-up lift estimated when first declared significant: mean {np.nanmean(power.lift):+.1%} "
        f"(true {0.3598151 / 0.3 - 1:+.2%} after the cap). Design effect of the mean latency "
        f"(control, last look): mean {lat.design_effect.mean():.1f}.\n"
    )
    ratio = cuped.width_ratio[np.isfinite(cuped.width_ratio)]
    fixed = cuped.width_ratio_fixed[np.isfinite(cuped.width_ratio_fixed)]
    print(
        f"**CUPED interval width** at the last look ({args.looks * args.batch:,} subjects per arm), "
        "CUPED / plain; theory √(1 − 0.5²) = 0.866:\n"
    )
    print("| interval | mean ratio | sd over experiments | experiments |")
    print("|---|---:|---:|---:|")
    print(f"| always-valid | {ratio.mean():.4f} | {ratio.std(ddof=1):.4f} | {ratio.size:,} |")
    print(f"| fixed-horizon 95% | {fixed.mean():.4f} | {fixed.std(ddof=1):.4f} | {fixed.size:,} |")

    if args.plot is not None:
        _plot(
            args.plot,
            args,
            nulls,
            {
                f"thumbs-up +{args.lift:.0%}, subject-level ({args.batch}/arm/look)": (power.detected, "C0-"),
                f"p95 latency +{args.regression:.0%}: guardrail failing ({args.latency_batch}/arm/look)": (
                    lat.failing,
                    "C3-",
                ),
                "p95 latency A/A: false alarms": (lat_aa.failing, "C3:"),
                f"+{args.cuped_effect:.0%} per-subject metric, with CUPED ({args.batch}/arm/look)": (
                    cuped.cuped,
                    "C2-",
                ),
                f"+{args.cuped_effect:.0%} per-subject metric, without CUPED": (cuped.plain, "C2--"),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
