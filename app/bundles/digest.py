"""Content addressing: a version's digest is sha256 over the canonical JSON of its config."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

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
