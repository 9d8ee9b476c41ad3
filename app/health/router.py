"""Liveness and readiness, open to load balancers without a key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.db import read_session

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


def _database_answers(request: Request) -> str | None:
    try:
        with read_session(request.app.state.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return None
    except Exception as exc:
        return type(exc).__name__


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers; Redis state is reported too."""
    problem = await run_in_threadpool(_database_answers, request)
    body: dict[str, Any] = {
        "status": "ok" if problem is None else "unavailable",
        "database": "ok" if problem is None else f"error: {problem}",
        "redis": "disabled" if request.app.state.settings.redis_url is None else "configured",
    }
    return JSONResponse(body, status_code=200 if problem is None else 503)
