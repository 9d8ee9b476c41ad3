"""A minimal OpenAI-compatible upstream for benchmarks: fixed answers, optional delay.

.venv/bin/python scripts/bench/fake_upstream.py --port 9101 [--delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

DELAY = 0.0


async def chat(request: Request) -> JSONResponse | StreamingResponse:
    body = await request.json()
    if DELAY:
        await asyncio.sleep(DELAY)
    base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": "gpt-4o-mini-2024-07-18"}
    usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    if not body.get("stream"):
        message = {"role": "assistant", "content": "Your order ships tomorrow."}
        return JSONResponse(
            {
                **base,
                "object": "chat.completion",
                "usage": usage,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )

    async def events():  # type: ignore[no-untyped-def]
        chunk = {**base, "object": "chat.completion.chunk"}
        for word in ("Your ", "order ", "ships ", "tomorrow."):
            data = {**chunk, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            yield f"data: {json.dumps(data)}\n\n"
        stop = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(stop)}\n\n"
        yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    DELAY = args.delay_ms / 1000
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
