"""Request-model base shared by every domain: strict types, no unknown fields, clean text."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from app.errors import invalid

MAX_DEPTH = 32


def _check_value(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise invalid(path or "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(path or "body", "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(path or "body", "contains an unpaired UTF-16 surrogate") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise invalid(path or "body", "must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, path, depth + 1)
            _check_value(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{path}.{index}" if path else str(index), depth + 1)


def check_json_text(value: Any, path: str = "") -> None:
    """Refuse what JSON allows but databases and tokenizers choke on: NUL, lone surrogates, NaN."""
    _check_value(value, path, 0)


class RequestModel(BaseModel):
    """Base of every request body: unknown fields and wrong types are 422s, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, str_max_length=1_048_576)

    @model_validator(mode="before")
    @classmethod
    def _clean_text(cls, data: Any) -> Any:
        check_json_text(data)
        return data
