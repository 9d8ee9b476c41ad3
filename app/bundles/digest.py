"""Content addressing: a version's digest is sha256 over the canonical JSON of its config."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from app.bundles.schemas import VersionCreate
from app.errors import invalid

CONFIG_FIELDS = ("model", "system_prompt", "variables", "checkpoint", "params")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same config always gives the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def config_digest(config: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the config fields only; metadata never changes the digest."""
    payload = {name: config.get(name) for name in CONFIG_FIELDS}
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


def normalized_config(body: VersionCreate) -> dict[str, Any]:
    """The config fields as stored and digested: variables reduced to what was set, no empty
    params. Pure, so ``chatver push`` computes the server's digest from files offline."""
    variables: dict[str, Any] = {}
    for name, spec in body.variables.items():
        if spec.required and "default" in spec.model_fields_set:
            raise invalid(f"variables.{name}", "a required variable cannot have a default")
        entry: dict[str, Any] = {}
        if "default" in spec.model_fields_set:
            entry["default"] = spec.default
        if spec.required:
            entry["required"] = True
        if spec.description:
            entry["description"] = spec.description
        variables[name] = entry
    return {
        "model": body.model,
        "system_prompt": body.system_prompt,
        "variables": variables,
        "checkpoint": body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else None,
        "params": body.params.model_dump(exclude_none=True),
    }
