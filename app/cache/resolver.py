"""Which version serves a request, answered from memory on the hot path.

Resolved versions are cached per (bundle, selector). A write anywhere in this process
drops the bundle's entries as soon as it commits (through the change feed); entries also
expire after a short TTL, which bounds staleness across replicas that share no Redis.
A generation counter stops a slow reader from caching what it read before a write.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.bundles import repository
from app.bundles.models import Stage, Version
from app.bundles.providers import effective_model
from app.bundles.service import BUNDLE_TOPIC, version_id
from app.changes import Change, ChangeFeed
from app.db import read_session
from app.errors import NotFound

MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class Selector:
    """How a request names a version: a stage's current one, a number, or a semver."""

    stage: Stage | None = None
    number: int | None = None
    semver: str | None = None

    @property
    def key(self) -> str:
        if self.number is not None:
            return f"#{self.number}"
        if self.semver is not None:
            return f"v{self.semver}"
        return f":{(self.stage or Stage.production).value}"


PRODUCTION = Selector(stage=Stage.production)


@dataclass(frozen=True)
class ResolvedVersion:
    """Everything a runtime needs from one version; immutable, safe to share across requests."""

    bundle: str
    number: int
    version_id: str
    digest: str
    stage: str
    model: str
    effective_model: str
    system_prompt: str
    variables: dict[str, Any]
    params: dict[str, Any]
    checkpoint: dict[str, Any] | None

    @classmethod
    def of(cls, bundle: str, version: Version) -> ResolvedVersion:
        ref = (version.checkpoint or {}).get("ref")
        return cls(
            bundle=bundle,
            number=version.number,
            version_id=version_id(bundle, version.number),
            digest=version.digest,
            stage=version.stage,
            model=version.model,
            effective_model=effective_model(version.model, ref),
            system_prompt=version.system_prompt,
            variables=version.variables,
            params=version.params,
            checkpoint=version.checkpoint,
        )


@dataclass(frozen=True)
class _Miss:
    """A cached negative answer: why nothing resolved (a fresh NotFound is raised each time)."""

    detail: str
    type_: str


_Entry = tuple[ResolvedVersion | _Miss, float]


def _lookup(session: Session, bundle_name: str, selector: Selector) -> ResolvedVersion | _Miss:
    bundle = repository.get_bundle(session, bundle_name)
    if bundle is None or bundle.id is None:
        return _Miss(f"no bundle named {bundle_name!r}", "unknown-bundle")
    if selector.number is not None:
        version = repository.get_version(session, bundle.id, selector.number)
        missing = f"no version {version_id(bundle_name, selector.number)}"
    elif selector.semver is not None:
        version = repository.get_version_by_semver(session, bundle.id, selector.semver)
        missing = f"no version {bundle_name}@{selector.semver}"
    else:
        stage = selector.stage or Stage.production
        version = repository.newest_in_stage(session, bundle.id, stage)
        missing = f"{bundle_name} has no version in {stage.value}"
        if version is None:
            return _Miss(missing, "no-active-version")
    if version is None:
        return _Miss(missing, "unknown-version")
    return ResolvedVersion.of(bundle_name, version)


class ActiveResolver:
    """Resolves (bundle, selector) to a version, from memory when it can."""

    def __init__(self, engine: Engine, feed: ChangeFeed, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        feed.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.topic != BUNDLE_TOPIC:
            return
        with self._lock:
            self._generations[change.key] = self._generations.get(change.key, 0) + 1
            for cache_key in [k for k in self._entries if k[0] == change.key]:
                del self._entries[cache_key]

    def invalidate_all(self) -> None:
        with self._lock:
            for name in list(self._generations):
                self._generations[name] += 1
            self._entries.clear()

    def _cached(self, cache_key: tuple[str, str]) -> ResolvedVersion | _Miss | None:
        entry = self._entries.get(cache_key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    def _load(self, bundle: str, selector: Selector) -> ResolvedVersion | _Miss:
        cache_key = (bundle, selector.key)
        generation = self._generations.get(bundle, 0)
        with read_session(self._engine) as session:
            answer = _lookup(session, bundle, selector)
        with self._lock:
            if self._generations.get(bundle, 0) == generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[cache_key] = (answer, time.monotonic() + self._ttl)
        return answer

    async def resolve(self, bundle: str, selector: Selector = PRODUCTION) -> ResolvedVersion:
        """The version ``selector`` names now; NotFound when there is none."""
        answer = self._cached((bundle, selector.key))
        if answer is None:
            answer = await run_in_threadpool(self._load, bundle, selector)
        if isinstance(answer, _Miss):
            raise NotFound(answer.detail, type_=answer.type_)
        return answer

    def resolve_sync(self, bundle: str, selector: Selector = PRODUCTION) -> ResolvedVersion:
        answer = self._cached((bundle, selector.key)) or self._load(bundle, selector)
        if isinstance(answer, _Miss):
            raise NotFound(answer.detail, type_=answer.type_)
        return answer
