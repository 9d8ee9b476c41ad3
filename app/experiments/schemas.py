"""Request and response shapes of experiments (see API.md, Experiments)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt, field_validator

from app.bundles.schemas import MAX_VERSION_NUMBER
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


class ExperimentCreate(RequestModel):
    name: str = Field(min_length=1, max_length=128)
    arms: list[ArmSpec] = Field(min_length=2, max_length=10)
    primary_metric: str | None = Field(default=None, min_length=1, max_length=128)
    guardrails: list[Guardrail] = Field(default_factory=list, max_length=20)
    seed: str | None = Field(default=None, min_length=1, max_length=256)


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
