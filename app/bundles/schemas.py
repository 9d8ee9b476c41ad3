"""Request and response shapes of bundles and versions (see API.md, Bundles and versions)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, field_validator

from app.schemas import RequestModel

BUNDLE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
VARIABLE_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
SEMVER = re.compile(r"^v?(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")
MAX_VERSION_NUMBER = 2**31 - 1

Number = StrictInt | StrictFloat
MetricName = Annotated[str, Field(min_length=1, max_length=128)]
ShortText = Annotated[str, Field(max_length=256)]


def normalize_semver(value: str) -> str:
    """1.3.0 from "v1.3.0"; ValueError when it is not MAJOR.MINOR.PATCH."""
    match = SEMVER.match(value)
    if not match:
        raise ValueError("must be MAJOR.MINOR.PATCH, e.g. 1.3.0")
    return ".".join(match.groups())


class BundleCreate(RequestModel):
    name: str = Field(pattern=BUNDLE_NAME, description="lower-case letters, digits and dashes")
    description: str = Field(default="", max_length=4000)


class BundleUpdate(RequestModel):
    description: str | None = Field(default=None, max_length=4000)
    # At least one: promotion always needs a second pair of eyes (the four-eyes rule).
    required_approvals: int | None = Field(default=None, ge=1, le=10)


class BundlePublic(BaseModel):
    name: str
    description: str
    production: str | None
    experiment: str | None
    rollout: str | None = None  # the running guarded rollout's id
    required_approvals: int
    versions: int
    created_at: str
    updated_at: str


class VariableSpec(RequestModel):
    default: Any = None
    required: bool = False
    description: str | None = Field(default=None, max_length=1000)


class Checkpoint(RequestModel):
    ref: str = Field(min_length=1, max_length=256)
    base_model: str | None = Field(default=None, min_length=1, max_length=256)
    training_data: str | None = Field(default=None, max_length=512)
    training_run: str | None = Field(default=None, max_length=256)


class Params(RequestModel):
    """Generation parameters a bundle may set; any other key is refused."""

    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    presence_penalty: Number | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: Number | None = Field(default=None, ge=-2, le=2)
    seed: StrictInt | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: (
        Annotated[str, Field(min_length=1, max_length=256)]
        | Annotated[
            list[Annotated[str, Field(min_length=1, max_length=256)]], Field(min_length=1, max_length=4)
        ]
        | None
    ) = None
    response_format: dict[str, Any] | None = None
    tools: Annotated[list[dict[str, Any]], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    timeout: Number | None = Field(default=None, gt=0, le=3600)
    api_base: str | None = Field(default=None, max_length=2048)
    mock_response: str | None = Field(default=None, max_length=65536)

    @field_validator("temperature", "top_p", "presence_penalty", "frequency_penalty", "timeout")
    @classmethod
    def _as_float(cls, value: float | int | None) -> float | None:
        # 1 and 1.0 are the same setting and must give the same digest.
        return None if value is None else float(value)


class VersionCreate(RequestModel):
    model: str = Field(min_length=3, max_length=256)
    system_prompt: str = Field(max_length=1_048_576)
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], VariableSpec] = Field(
        default_factory=dict, max_length=100
    )
    checkpoint: Checkpoint | None = None
    params: Params = Field(default_factory=Params)
    semver: str | None = None
    message: str = Field(default="", max_length=4000)
    parent: int | None = Field(default=None, ge=1, le=MAX_VERSION_NUMBER)
    lineage: dict[Annotated[str, Field(max_length=128)], Any] = Field(default_factory=dict, max_length=100)
    metrics: dict[MetricName, Number] = Field(default_factory=dict, max_length=500)

    @field_validator("semver")
    @classmethod
    def _semver(cls, value: str | None) -> str | None:
        return None if value is None else normalize_semver(value)


class EvaluationCreate(RequestModel):
    metrics: dict[MetricName, Number] = Field(min_length=1, max_length=500)
    dataset: str | None = Field(default=None, min_length=1, max_length=256)


class EvaluationPublic(BaseModel):
    id: int
    version_id: str
    metrics: dict[str, float | int]
    dataset: str | None
    author: str
    created_at: str


class VersionPublic(BaseModel):
    bundle: str
    number: int
    version_id: str
    digest: str
    stage: str
    model: str
    system_prompt: str
    variables: dict[str, Any]
    checkpoint: dict[str, Any] | None
    params: dict[str, Any]
    semver: str | None
    message: str
    parent: int | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    author: str
    created_at: str
    evaluations: list[EvaluationPublic] = Field(default_factory=list)


class FieldChange(BaseModel):
    field: str
    from_: Any = Field(serialization_alias="from")
    to: Any


class DiffPublic(BaseModel):
    from_: str = Field(serialization_alias="from")
    to: str
    changes: list[FieldChange]
    system_prompt_diff: str


class VersionConfig(BaseModel):
    """The fields of a version that its digest covers."""

    model: str
    system_prompt: str
    variables: dict[str, Any]
    checkpoint: dict[str, Any] | None
    params: dict[str, Any]


class ComparedVersion(BaseModel):
    version_id: str
    stage: str
    semver: str | None
    digest: str
    config: VersionConfig
    eval_metrics: dict[str, float | int] = Field(description="latest value per metric")
    evaluations: int
    created_at: str
    author: str
