"""What one arm's traffic says, read from the per-subject aggregates (never from raw events).

Shared by experiment results and by the guardrail checks of guarded rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from app.events import subject_repository as subjects
from app.events.aggregates import Histogram
from app.experiments.stats import RatioSums, Sample

PER_REQUEST = tuple(subjects.RATIO_METRICS)  # error_rate, latency_ms, ttft_ms, cost_per_request
REQUEST_SQUARES = {
    "latency_ms": ("latency_squares", "latency_ms.y", "latency_ms.d"),
    "ttft_ms": ("ttft_squares", "ttft_ms.y", "ttft_ms.d"),
}


@dataclass(frozen=True)
class OutcomeSums:
    """One outcome of one arm: per outcome (a ratio over units) and per subject (a unit mean)."""

    per_outcome: RatioSums
    per_subject: RatioSums
    observations: int
    units_with_outcome: int


@dataclass(frozen=True)
class ArmEvidence:
    version_id: str
    units: int = 0
    requests: int = 0
    errors: int = 0
    cost: float = 0.0
    ratios: dict[str, RatioSums] = field(default_factory=dict)  # per-request metrics and requests_per_subject
    request_samples: dict[str, Sample] = field(default_factory=dict)  # latency, TTFT as if requests were iid
    histograms: dict[str, Histogram] = field(default_factory=dict)
    outcomes: dict[str, OutcomeSums] = field(default_factory=dict)

    def ratio(self, metric: str) -> RatioSums:
        return self.ratios.get(metric) or RatioSums(self.units, 0, 0, 0, 0, 0)

    def histogram(self, metric: str) -> Histogram:
        return self.histograms.get(metric) or Histogram({})


def _ratio(units: int, sums: dict[str, float], prefix: str) -> RatioSums:
    def get(name: str) -> float:
        return sums.get(f"{prefix}.{name}", 0.0)

    return RatioSums(
        n=units,
        y=get("y"),
        yy=get("yy"),
        d=get("d"),
        dd=get("dd"),
        yd=get("yd"),
        x=get("x"),
        xx=get("xx"),
        yx=get("yx"),
        dx=get("dx"),
        nx=int(get("nx")),
    )


def load_arms(session: Session, scope: str, step: int, version_ids: list[str]) -> dict[str, ArmEvidence]:
    """version id → its evidence within one experiment (or one rollout step)."""
    sums = subjects.arm_sums(session, scope, step)
    outcomes = subjects.outcome_sums(session, scope, step)
    sketches = subjects.histograms(session, scope, step)
    arms: dict[str, ArmEvidence] = {}
    for version_id in version_ids:
        arm = sums.get(version_id, {})
        units = int(arm.get("units", 0))
        ratios = {metric: _ratio(units, arm, metric) for metric in (*PER_REQUEST, "requests_per_subject")}
        request_samples = {
            metric: Sample.from_sums(int(arm.get(d, 0)), arm.get(y, 0.0), arm.get(squares, 0.0))
            for metric, (squares, y, d) in REQUEST_SQUARES.items()
        }
        arm_outcomes: dict[str, OutcomeSums] = {}
        for (version, name), o in outcomes.items():
            if version != version_id:
                continue
            n = max(units, int(o["units_with_outcome"]))
            per_outcome = RatioSums(
                n=n,
                y=o["y"],
                yy=o["yy"],
                d=o["d"],
                dd=o["dd"],
                yd=o["yd"],
                x=o.get("x", 0.0),
                xx=o.get("xx", 0.0),
                yx=o["yx"],
                dx=o["dx"],
                nx=int(o.get("nx", 0)),
            )
            per_subject = RatioSums(
                n=n,
                y=o["y"],
                yy=o["yy"],
                d=float(n),
                dd=float(n),
                yd=o["y"],
                x=per_outcome.x,
                xx=per_outcome.xx,
                yx=o["yx"],
                dx=per_outcome.x,
                nx=per_outcome.nx,
            )
            arm_outcomes[name] = OutcomeSums(
                per_outcome, per_subject, int(o["d"]), int(o["units_with_outcome"])
            )
        arms[version_id] = ArmEvidence(
            version_id=version_id,
            units=units,
            requests=int(arm.get("requests", 0)),
            errors=int(arm.get("errors", 0)),
            cost=arm.get("cost", 0.0),
            ratios=ratios,
            request_samples=request_samples,
            histograms={
                metric: Histogram(counts)
                for (version, metric), counts in sketches.items()
                if version == version_id
            },
            outcomes=arm_outcomes,
        )
    return arms
