"""Helpers for tests that chat through the gateway: provider responses and small request wrappers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.conftest import ALLOWED_API_BASE, Api

UPSTREAM = f"{ALLOWED_API_BASE}/v1/chat/completions"


def completion(
    content: str = "Hello from the model", prompt_tokens: int = 20, completion_tokens: int = 5
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": 1764400000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def sse(parts: tuple[str, ...] = ("Hel", "lo", "!"), usage: bool = True) -> str:
    base = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1764400000,
        "model": "gpt-4o-mini",
    }
    chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    ]
    chunks += [
        {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in parts
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            }
        )
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


class SlowStream(httpx.AsyncByteStream):
    """An upstream SSE body that trickles out, so a client can act (or leave) halfway."""

    def __init__(self, body: str) -> None:
        self.parts = [part + "\n\n" for part in body.split("\n\n") if part]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part.encode()
            await asyncio.sleep(0.3)


def open_slow_stream(api: Api, server_url: str, upstream: Any) -> tuple[httpx.Client, Any]:
    """Start a streaming chat through a real server whose upstream answers slowly."""
    upstream.route(host="127.0.0.1", port=int(server_url.rsplit(":", 1)[1])).pass_through()
    upstream.post(UPSTREAM).mock(
        side_effect=lambda request: httpx.Response(
            200,
            stream=SlowStream(sse(parts=tuple("abcdefghij"))),
            headers={"content-type": "text/event-stream"},
        )
    )
    body = {
        "model": "support-bot",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "prompt_variables": {"tone": "calm"},
    }
    http = httpx.Client(base_url=server_url, timeout=10)
    return http, http.stream("POST", "/v1/chat/completions", json=body, headers=api.keys["runtime"])


def ok(body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(200, json=body or completion())


def sent(call: Any) -> dict[str, Any]:
    """The JSON body chatver sent upstream."""
    return dict(json.loads(call.request.content))


GATEWAY_PARAMS = {"temperature": 0.2, "max_tokens": 512, "api_base": f"{ALLOWED_API_BASE}/v1"}


def chat(api: Api, model: str = "support-bot", who: str = "runtime", **body: Any) -> httpx.Response:
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": "Where is my order?"}],
        "prompt_variables": {"tone": "friendly"},
        **body,
    }
    headers = {**api.keys[who], **body.pop("headers", {})} if "headers" in body else api.keys[who]
    payload.pop("headers", None)
    return api.client.post("/v1/chat/completions", json=payload, headers=headers)


def flush_events(api: Api) -> None:
    """Store every queued chat event now (the writer otherwise does it within 200 ms)."""
    app = api.client.app
    api.client.portal.call(app.state.event_writer.flush)  # type: ignore[union-attr, attr-defined]


def metrics_of(api: Api, number: int, name: str = "support-bot") -> dict[str, Any]:
    flush_events(api)
    response = api.client.get(f"/api/bundles/{name}/versions/{number}/metrics", headers=api.keys["runtime"])
    assert response.status_code == 200, response.text
    return dict(response.json())
