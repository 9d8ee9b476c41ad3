"""Shapes of feedback, reported events and per-version metrics (see API.md, Outcomes and events, Metrics)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictFloat, StrictInt

from app.bundles.schemas import ComparedVersion
from app.schemas import RequestModel

OUTCOME_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"
VERSION_ID = r"^[a-z0-9][a-z0-9-]{0,62}@[1-9][0-9]{0,9}$"
MAX_BATCH = 1000

Value = StrictInt | StrictFloat
OutcomeName = Annotated[str, Field(pattern=OUTCOME_NAME)]


class FeedbackCreate(RequestModel):
    request_id: str = Field(min_length=1, max_length=64)
    name: OutcomeName
    value: Value = Field(ge=-1e12, le=1e12)
    comment: str = Field(default="", max_length=4000)


class EventCreate(RequestModel):
    version_id: str = Field(pattern=VERSION_ID, description="e.g. support-bot@4")
    subject: str | None = Field(default=None, min_length=1, max_length=256)
    experiment: str | None = Field(default=None, min_length=1, max_length=40)
    rollout: str | None = Field(
        default=None, pattern=r"^ro_[0-9a-f]{16}$", description="the guarded rollout that chose the version"
    )
    step: StrictInt | None = Field(
        default=None, ge=0, le=19, description="the rollout step /active reported (default: the current one)"
    )
    latency_ms: Value | None = Field(default=None, ge=0, le=86_400_000)
    ttft_ms: Value | None = Field(default=None, ge=0, le=86_400_000)
    prompt_tokens: StrictInt | None = Field(default=None, ge=0, le=100_000_000)
    completion_tokens: StrictInt | None = Field(default=None, ge=0, le=100_000_000)
    cost: Value | None = Field(default=None, ge=0, le=1_000_000)
    error: str | None = Field(default=None, min_length=1, max_length=128)
    stream: bool = False
    outcomes: dict[OutcomeName, Annotated[Value, Field(ge=-1e12, le=1e12)]] = Field(
        default_factory=dict, max_length=50
    )


# --- responses -------------------------------------------------------------------------------------


class LatencyPercentiles(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class TtftPercentiles(BaseModel):
    p50: float | None
    p95: float | None


class TokenTotals(BaseModel):
    prompt: int
    completion: int


class CostTotals(BaseModel):
    total: float
    per_request: float | None


class OutcomeSummary(BaseModel):
    count: int
    mean: float | None


class VersionMetrics(BaseModel):
    """Live metrics of one version, from the events attributed to it (every request counts once)."""

    version_id: str
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: LatencyPercentiles
    ttft_ms: TtftPercentiles
    tokens: TokenTotals
    cost: CostTotals
    outcomes: dict[str, OutcomeSummary]
    since: str | None = None


class VersionComparison(ComparedVersion):
    live_metrics: VersionMetrics


class Comparison(BaseModel):
    """Versions side by side: config, the latest evaluation metrics and live metrics."""

    bundle: str
    versions: list[VersionComparison]
