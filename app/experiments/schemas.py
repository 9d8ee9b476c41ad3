"""Request and response shapes of experiments (see API.md, Experiments)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt, field_validator

from app.bundles.schemas import MAX_VERSION_NUMBER
from app.events.schemas import OUTCOME_NAME
from app.schemas import RequestModel

ARM_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"

# Metrics a guardrail may watch; "latency_ms.p95" reads the p95 of the latency.
GUARDRAIL_METRICS = frozenset(
    {
        "error_rate",
        "latency_ms.p50",
        "latency_ms.p95",
        "latency_ms.p99",
        "ttft_ms.p50",
        "ttft_ms.p95",
        "cost_per_request",
    }
)


# Built-in per-request metrics a decision can rest on (the others are outcome names).
PRIMARY_BUILTINS = ("error_rate", "latency_ms", "cost_per_request")


class ArmSpec(RequestModel):
    name: str = Field(pattern=ARM_NAME)
    version: int = Field(ge=1, le=MAX_VERSION_NUMBER)
    weight: StrictInt | StrictFloat = Field(gt=0, le=1_000_000)


class Guardrail(RequestModel):
    metric: str
    max_regression: StrictInt | StrictFloat = Field(ge=0, le=100)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in GUARDRAIL_METRICS:
            raise ValueError(f"unknown guardrail metric; use one of {', '.join(sorted(GUARDRAIL_METRICS))}")
        return value


def distinct_guardrails(guardrails: list[Guardrail]) -> list[Guardrail]:
    """Each metric at most once: a repeated guardrail would only widen the family's α split."""
    seen = [g.metric for g in guardrails]
    repeated = sorted({m for m in seen if seen.count(m) > 1})
    if repeated:
        raise ValueError(f"each metric may have one guardrail; repeated: {', '.join(repeated)}")
    return guardrails


class ExperimentCreate(RequestModel):
    name: str = Field(min_length=1, max_length=128)
    arms: list[ArmSpec] = Field(min_length=2, max_length=10)
    primary_metric: str | None = Field(
        default=None,
        pattern=OUTCOME_NAME,
        description="an outcome name (e.g. thumbs_up) or error_rate, latency_ms, cost_per_request",
    )
    guardrails: list[Guardrail] = Field(default_factory=list, max_length=20)
    seed: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("primary_metric")
    @classmethod
    def _decidable(cls, value: str | None) -> str | None:
        if value is not None and value in GUARDRAIL_METRICS - set(PRIMARY_BUILTINS):
            raise ValueError(
                f"{value} is a guardrail metric; a primary metric is an outcome name or one of "
                f"{', '.join(PRIMARY_BUILTINS)}"
            )
        return value

    _guardrails = field_validator("guardrails")(distinct_guardrails)


class ExperimentStop(RequestModel):
    winner: str | None = Field(default=None, pattern=ARM_NAME)
    promote: bool = False
    reason: str = Field(default="", max_length=4000)


class ExperimentPublic(BaseModel):
    id: str
    bundle: str
    name: str
    status: str
    arms: list[dict[str, Any]]
    primary_metric: str | None
    guardrails: list[dict[str, Any]]
    seed: str
    created_by: str
    created_at: str
    started_at: str | None
    stopped_at: str | None
    winner: str | None
    stop_reason: str


# --- results (GET /api/experiments/{id}/results) ------------------------------------------------


class LiftPublic(BaseModel):
    """Treatment vs control on one metric: relative lift with fixed and always-valid intervals."""

    lift: float | None
    lift_ci95: list[float] | None
    p_value: float | None
    lift_ci95_always_valid: list[float] | None
    p_value_always_valid: float | None
    significant: bool
    p_value_adjusted: float | None = Field(
        default=None, description="Holm-adjusted always-valid p-value (primary metric, across treatment arms)"
    )
    cuped_variance_reduction: float | None = Field(
        default=None, description="share of variance removed by the pre-period covariate; null if not applied"
    )
    per_subject: LiftPublic | None = Field(default=None, description="the same outcome summed per subject")


class MeanPublic(BaseModel):
    mean: float | None
    ci95: list[float] | None


class MetricPublic(MeanPublic):
    """An outcome of one arm: its mean per outcome (units are subjects), and per subject."""

    n: int = Field(description="units (subjects, or requests without one) in the arm")
    observations: int = Field(description="outcomes recorded")
    per_subject: MeanPublic


class ArmResult(BaseModel):
    name: str
    version_id: str
    weight: float
    subjects: int = Field(description="units served by this arm: subjects, plus requests without one")
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: dict[str, float | None]
    ttft_ms: dict[str, float | None]
    cost_per_request: float | None
    requests_per_subject: float | None
    metrics: dict[str, MetricPublic]
    per_request: dict[str, MeanPublic] = Field(
        default_factory=dict,
        description="error_rate, latency_ms, cost_per_request: mean per request (subjects as units), 95% CI",
    )
    vs_control: dict[str, LiftPublic] | None = None


class SrmCheck(BaseModel):
    unit: str
    chi2: float
    p_value: float
    flag: bool
    checked: bool
    counts: dict[str, int]
    expected_share: dict[str, float]


class CrossoverCheck(BaseModel):
    """Subjects served more than one arm, or another arm than they were assigned."""

    subjects: int = Field(description="units served by more than one arm")
    share: float = Field(description="subjects / all units")
    served_other_arm: int = Field(description="units served an arm other than the one they were assigned")
    units: int = Field(description="units with either problem, each counted once")
    units_share: float = Field(description="units / all units; flagged above 1%")
    flag: bool


class SrmPublic(BaseModel):
    p_value: float = Field(description="the smaller p-value of the two checks")
    flag: bool = Field(description="any check flags: results are not trustworthy")
    checked: bool
    assigned: SrmCheck
    exposure: SrmCheck
    crossover: CrossoverCheck


class GuardrailPublic(BaseModel):
    metric: str
    arm: str
    status: str
    regression: float | None
    bound: float | None
    upper: float | None
    max_regression: float
    alpha: float


class AnalysisPublic(BaseModel):
    unit: str = Field(description="what one observation is: the subject (a request without one counts alone)")
    metrics: str
    alpha: float
    decision_family: str
    guardrail_alpha: float
    cuped: str


class ExperimentResults(BaseModel):
    experiment: str
    status: str
    primary_metric: str | None
    analysis: AnalysisPublic
    arms: list[ArmResult]
    srm: SrmPublic
    guardrails: list[GuardrailPublic]
    decision: str
