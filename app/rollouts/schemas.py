"""Request and response shapes of guarded rollouts (see API.md, Guarded rollouts)."""

from __future__ import annotations

import itertools

from pydantic import BaseModel, Field, field_validator

from app.bundles.schemas import MAX_VERSION_NUMBER
from app.experiments.schemas import Guardrail, distinct_guardrails
from app.schemas import RequestModel


class RolloutCreate(RequestModel):
    version: int = Field(ge=1, le=MAX_VERSION_NUMBER)
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100], min_length=1, max_length=20)
    min_requests_per_step: int = Field(default=200, ge=1, le=1_000_000_000)
    max_wait_seconds: int = Field(
        default=86_400,
        ge=60,
        le=90 * 86_400,
        description="a step that has not passed every guardrail after this long stops the rollout",
    )
    guardrails: list[Guardrail] = Field(min_length=1, max_length=20)

    _guardrails = field_validator("guardrails")(distinct_guardrails)

    @field_validator("steps")
    @classmethod
    def _ramp(cls, steps: list[int]) -> list[int]:
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError("each step is a percentage of traffic from 1 to 100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps must increase")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100 (promotion)")
        if steps[0] >= 100:
            raise ValueError(
                "the first step must be below 100: a rollout compares the candidate with production"
            )
        return steps


class RolloutStop(RequestModel):
    reason: str = Field(min_length=1, max_length=4000)


class RolloutGuardrailPublic(BaseModel):
    metric: str
    max_regression: float
    status: str
    regression: float | None
    bound: float | None
    upper: float | None
    alpha: float


class RolloutPublic(BaseModel):
    id: str
    bundle: str
    version_id: str
    baseline_version_id: str
    status: str
    state: str = Field(
        description="running: waiting-for-data, waiting-for-evidence or ready; otherwise the status"
    )
    waiting_for: list[str] = Field(description="what the current step still needs before it advances")
    steps: list[int]
    step: int
    percent: int
    min_requests_per_step: int
    max_wait_seconds: int
    guardrails: list[RolloutGuardrailPublic] = Field(description="checks within the current step")
    requests: dict[str, int] = Field(description="requests in the current step, per arm")
    subjects: dict[str, int] = Field(description="units in the current step, per arm")
    reason: str
    created_by: str
    created_at: str
    step_started_at: str
    finished_at: str | None
