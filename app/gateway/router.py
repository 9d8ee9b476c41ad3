"""/v1: the OpenAI-compatible chat gateway."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.auth.deps import RuntimeKey
from app.bundles import service as bundles
from app.db import read_session
from app.errors import invalid
from app.gateway.schemas import parse_chat_request
from app.gateway.service import Gateway

router = APIRouter(prefix="/v1", tags=["gateway"])


@router.post(
    "/chat/completions",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "required": ["model", "messages"]}}
            },
        }
    },
)
async def chat_completions(request: Request, _: RuntimeKey) -> Response:
    """OpenAI Chat Completions; ``model`` is "support-bot", "support-bot@4" or "support-bot:staging"."""
    try:
        payload: Any = await request.json()
    except ValueError:
        raise invalid("body", "the body must be JSON") from None
    body = parse_chat_request(payload)
    subject = request.headers.get("x-chatver-subject") or body.get("user")
    if subject is not None and not 0 < len(subject) <= 256:
        raise invalid("x-chatver-subject", "must be 1 to 256 characters")
    gateway: Gateway = request.app.state.gateway
    return await gateway.chat(body, subject)


@router.get("/models")
async def list_models(request: Request, _: RuntimeKey) -> dict[str, Any]:
    """Every bundle, as an OpenAI model id."""

    def load() -> list[tuple[str, float]]:
        with read_session(request.app.state.engine) as session:
            return [(b.name, b.created_at.timestamp()) for b in bundles.list_bundles(session=session)]

    rows = await run_in_threadpool(load)
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "owned_by": "chatver", "created": int(created)}
            for name, created in rows
        ],
    }
