"""Prompt variables: merge a version's declared defaults with a caller's values, safely.

Values come from runtime callers on the hot path, so their size is bounded before any
template sees them (the sandbox bounds what a template does with them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.errors import invalid

MAX_VARIABLE_STRING_BYTES = 16 * 1024
MAX_VARIABLE_ITEMS = 256
MAX_VARIABLE_DEPTH = 8
MAX_INT_BITS = 128


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _json_problem(value: Any, depth: int = 0) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "the number is too large" if value.bit_length() > MAX_INT_BITS else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        too_long = _utf8_size(value) > MAX_VARIABLE_STRING_BYTES
        return f"strings are limited to {MAX_VARIABLE_STRING_BYTES} bytes" if too_long else None
    if not isinstance(value, list | tuple | dict):
        return "must be a JSON value"
    if depth >= MAX_VARIABLE_DEPTH:
        return f"nesting is limited to {MAX_VARIABLE_DEPTH} levels"
    if len(value) > MAX_VARIABLE_ITEMS:
        return f"lists and objects are limited to {MAX_VARIABLE_ITEMS} items"
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        return "object keys must be strings"
    items = value.values() if isinstance(value, dict) else value
    return next((problem for item in items if (problem := _json_problem(item, depth + 1))), None)


def resolve_values(
    *, variables: Mapping[str, Mapping[str, Any]], provided: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge declared defaults with the caller's values, refusing unknown, missing or oversized ones."""
    for name in sorted(provided):
        if name not in variables:
            raise invalid(f"variables.{name}", "undeclared variable")
        if problem := _json_problem(provided[name]):
            raise invalid(f"variables.{name}", problem)
    values: dict[str, Any] = {}
    for name, spec in variables.items():
        if name in provided:
            values[name] = provided[name]
        elif spec.get("required"):
            raise invalid(f"variables.{name}", f"required variable {name} is missing")
        elif "default" in spec:  # an explicit null default is a value, absence is not
            values[name] = spec["default"]
    return values
