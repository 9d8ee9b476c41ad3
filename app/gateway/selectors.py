"""Parse the ``model`` of a chat request into a bundle and a version selector."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.bundles.models import Stage
from app.bundles.schemas import MAX_VERSION_NUMBER, normalize_semver
from app.cache.resolver import Selector
from app.errors import invalid

_MODEL = re.compile(r"^(?P<bundle>[a-z0-9][a-z0-9-]{0,62})(?:@(?P<version>[^@:]+)|:(?P<stage>[a-z]+))?$")


@dataclass(frozen=True)
class ModelSelector:
    bundle: str
    selector: Selector | None  # None: production, or the subject's arm of a running experiment

    @property
    def pinned(self) -> bool:
        return self.selector is not None


def parse_model(model: str) -> ModelSelector:
    """ "support-bot", "support-bot@4", "support-bot@1.3.0", "support-bot:staging"."""
    match = _MODEL.match(model)
    if not match:
        raise invalid("model", f"{model!r} is not a bundle name, name@version, name@semver or name:stage")
    bundle, version, stage = match.group("bundle", "version", "stage")
    if stage is not None:
        try:
            return ModelSelector(bundle, Selector(stage=Stage(stage)))
        except ValueError:
            raise invalid("model", f"unknown stage {stage!r}") from None
    if version is None:
        return ModelSelector(bundle, None)
    if version.isascii() and version.isdigit() and len(version) <= 10:
        number = int(version)
        if 1 <= number <= MAX_VERSION_NUMBER:
            return ModelSelector(bundle, Selector(number=number))
    try:
        return ModelSelector(bundle, Selector(semver=normalize_semver(version)))
    except ValueError:
        raise invalid("model", f"{version!r} is neither a version number nor a semver") from None
