"""Request shapes of feedback and reported events (see API.md, Outcomes and events)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictFloat, StrictInt

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
