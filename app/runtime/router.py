"""The runtime's hot path: fetch the active bundle (with ETag) and render its system prompt."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from app.auth.deps import RuntimeKey
from app.bundles.models import Stage
from app.bundles.schemas import BUNDLE_NAME, MAX_VERSION_NUMBER
from app.bundles.templating import render_template
from app.bundles.variables import resolve_values
from app.cache.resolver import ActiveResolver, Selector, Served
from app.schemas import RequestModel

router = APIRouter(prefix="/api/bundles", tags=["runtime"])

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME, description="bundle name")]


class RenderRequest(RequestModel):
    variables: dict[str, Any] = Field(default_factory=dict, max_length=100)
    subject: str | None = Field(default=None, min_length=1, max_length=256)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION_NUMBER)


class RenderedPrompt(BaseModel):
    version_id: str
    model: str
    params: dict[str, Any]
    system_prompt: str
    messages: list[dict[str, str]]
    experiment: dict[str, str] | None
    rollout: dict[str, Any] | None = None


def _resolver(request: Request) -> ActiveResolver:
    resolver: ActiveResolver = request.app.state.resolver
    return resolver


def active_body(served: Served) -> dict[str, Any]:
    resolved = served.version
    return {
        "bundle": resolved.bundle,
        "version_id": resolved.version_id,
        "number": resolved.number,
        "digest": resolved.digest,
        "stage": resolved.stage,
        "model": resolved.model,
        "system_prompt": resolved.system_prompt,
        "variables": resolved.variables,
        "params": resolved.params,
        "checkpoint": resolved.checkpoint,
        "experiment": served.experiment,
        "rollout": served.rollout,
    }


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate == bare:
            return True
    return False


@router.get("/{name}/active", responses={304: {"description": "Not modified (ETag matched)"}})
async def get_active(
    request: Request,
    _: RuntimeKey,
    name: BundleName,
    subject: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    stage: Stage = Stage.production,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """The version a runtime should use now: no database work when it is cached."""
    resolver = _resolver(request)
    if stage is Stage.production:
        served = await resolver.serve(name, subject)
    else:
        served = Served(await resolver.resolve(name, Selector(stage=stage)))
    resolved = served.version
    etag = (
        f'"{resolved.digest}"'
        if served.experiment_id is None
        else f'"{resolved.digest};{served.experiment_id}/{served.arm}"'
    )
    headers = {"ETag": etag, "Cache-Control": "no-cache", "x-chatver-version-id": resolved.version_id}
    if served.experiment_id is not None:
        headers["x-chatver-experiment"] = f"{served.experiment_id}/{served.arm}"
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    body = json.dumps(active_body(served), ensure_ascii=False, separators=(",", ":"))
    return Response(body, media_type="application/json", headers=headers)


@router.post("/{name}/render")
async def render_prompt(
    request: Request, _: RuntimeKey, name: BundleName, body: RenderRequest
) -> RenderedPrompt:
    """Render the system prompt of the serving (or the given) version with these variables."""
    resolver = _resolver(request)
    if body.version is not None:
        served = Served(await resolver.resolve(name, Selector(number=body.version)))
    else:
        served = await resolver.serve(name, body.subject)
    resolved = served.version
    values = resolve_values(variables=resolved.variables, provided=body.variables)
    text = render_template(source=resolved.system_prompt, values=values)
    return RenderedPrompt(
        version_id=resolved.version_id,
        model=resolved.model,
        params=resolved.params,
        system_prompt=text,
        messages=[{"role": "system", "content": text}],
        experiment=served.experiment,
        rollout=served.rollout,
    )
