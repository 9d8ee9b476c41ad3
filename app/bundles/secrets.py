"""Refuses provider credentials pasted into a bundle: secrets live in the server's environment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SECRET_PATTERNS = re.compile(
    r"(?<![A-Za-z0-9])("
    r"sk-(?:proj-|ant-|or-)?[A-Za-z0-9_\-]{20,}"  # OpenAI, Anthropic, OpenRouter
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google API key
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|gsk_[A-Za-z0-9]{40,}"  # Groq
    r")"
)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}" if path else str(index))


def find_secret(value: Any, path: str = "") -> str | None:
    """The field path of the first string that looks like a provider credential, if any."""
    for field, text in _strings(value, path):
        if _SECRET_PATTERNS.search(text):
            return field
    return None
