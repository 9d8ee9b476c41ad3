"""Versions side by side: the field-by-field diff, the prompt diff, and the rows of a comparison."""

from __future__ import annotations

import difflib
from typing import Any

from sqlmodel import Session

from app.bundles.models import Bundle, Evaluation, Version
from app.bundles.schemas import MAX_VERSION_NUMBER, ComparedVersion, VersionConfig
from app.bundles.service import get_version, latest_metrics, production_numbers, version_id
from app.dbtypes import rfc3339
from app.errors import invalid

# --- compare -------------------------------------------------------------------------------

MAX_COMPARED = 10


def parse_version_numbers(raw: str, field: str = "versions") -> list[int]:
    """``"3,4"`` → [3, 4]: 1 to MAX_COMPARED distinct version numbers, in the order given."""
    numbers: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not (
            part.isascii() and part.isdigit() and len(part) <= 10 and 1 <= int(part) <= MAX_VERSION_NUMBER
        ):
            raise invalid(field, f"{part!r} is not a version number; use e.g. {field}=3,4")
        if int(part) not in numbers:
            numbers.append(int(part))
    if not 1 <= len(numbers) <= MAX_COMPARED:
        raise invalid(field, f"list 1 to {MAX_COMPARED} version numbers")
    return numbers


def compared_versions(*, session: Session, bundle: Bundle, numbers: list[int] | None) -> list[Version]:
    """The listed versions, or by default the production version and the newest one."""
    if numbers is None:
        production = production_numbers(session=session, bundles=[bundle]).get(bundle.id or 0)
        numbers = [n for n in dict.fromkeys([production, bundle.last_number]) if n]
    return [get_version(session=session, bundle=bundle, selector=n) for n in numbers]


def compared_version(version: Version, bundle_name: str, evaluations: list[Evaluation]) -> ComparedVersion:
    return ComparedVersion(
        version_id=version_id(bundle_name, version.number),
        stage=version.stage,
        semver=version.semver,
        digest=version.digest,
        config=VersionConfig(
            model=version.model,
            system_prompt=version.system_prompt,
            variables=version.variables,
            checkpoint=version.checkpoint,
            params=version.params,
        ),
        eval_metrics=latest_metrics(version, evaluations),
        evaluations=len(evaluations),
        created_at=rfc3339(version.created_at),
        author=version.author,
    )


# --- diff ----------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(_flatten(value[key], f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _config_fields(version: Version) -> dict[str, Any]:
    fields: dict[str, Any] = {"model": version.model, "system_prompt": version.system_prompt}
    for name in ("params", "variables", "checkpoint"):
        fields.update(_flatten(getattr(version, name) or {}, name))
    return fields


def config_changes(old: Version, new: Version) -> list[dict[str, Any]]:
    """Field-level changes between two versions' configs, as dotted paths."""
    before, after = _config_fields(old), _config_fields(new)
    changes: list[dict[str, Any]] = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field, _MISSING), after.get(field, _MISSING)
        if old == new or _placeholder(field, old, new, before, after):
            continue
        changes.append(
            {"field": field, "from": None if old is _MISSING else old, "to": None if new is _MISSING else new}
        )
    return changes


_MISSING = object()


def _placeholder(field: str, old: Any, new: Any, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """An empty mapping that only stood for its now-present children (or the reverse): not a change."""
    nested = field + "."
    if old == {} and new is _MISSING:
        return any(key.startswith(nested) for key in after)
    if new == {} and old is _MISSING:
        return any(key.startswith(nested) for key in before)
    return False


def prompt_diff(old: Version, new: Version, bundle_name: str) -> str:
    """A unified diff of the two system prompts, named by version id."""
    lines = difflib.unified_diff(
        old.system_prompt.splitlines(),
        new.system_prompt.splitlines(),
        fromfile=version_id(bundle_name, old.number),
        tofile=version_id(bundle_name, new.number),
        lineterm="",
    )
    return "".join(f"{line}\n" for line in lines)
