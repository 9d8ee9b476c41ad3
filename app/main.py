"""create_app(): lifespan (engine, caches, bootstrap key), routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.auth import service as auth_service
from app.auth.router import router as keys_router
from app.auth.service import Authenticator
from app.bundles.providers import known_providers
from app.bundles.router import router as bundles_router
from app.cache.resolver import ActiveResolver
from app.changes import ChangeFeed
from app.db import create_db_engine, run_in_transaction
from app.errors import Conflict, ServiceUnavailable, add_exception_handlers, error_response
from app.events.router import router as events_router
from app.events.telemetry import Telemetry
from app.events.writer import EventWriter
from app.experiments.router import router as experiments_router
from app.gateway.llm import LLMRouter, configure_litellm
from app.gateway.router import router as gateway_router
from app.gateway.service import Gateway
from app.health.router import router as health_router
from app.lifecycle.router import router as lifecycle_router
from app.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from app.runtime.router import router as runtime_router
from app.settings import Settings

logger = logging.getLogger("chatver")


def _bootstrap(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    secret = run_in_transaction(
        app.state.engine,
        app.state.changes,
        lambda s: auth_service.ensure_bootstrap_key(session=s, admin_key=settings.admin_key),
    )
    if secret:
        # Printed once, on purpose: there was no key at all, so nobody could manage chatver.
        print(f"chatver: generated the first admin API key (shown once): {secret}", flush=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_db_engine(settings.database_url, pool_size=settings.db_pool_size)
    app.state.engine = engine
    feed = ChangeFeed()
    app.state.changes = feed
    app.state.authenticator = Authenticator(engine, feed, ttl=settings.cache_ttl_seconds)
    app.state.resolver = ActiveResolver(engine, feed, ttl=settings.cache_ttl_seconds)
    known_providers()  # import LiteLLM once at start, not on the first publish
    _bootstrap(app)
    telemetry = Telemetry()
    app.state.telemetry = telemetry
    writer = EventWriter(engine, telemetry, max_queue=settings.event_queue_max)
    app.state.event_writer = writer
    writer.start()
    configure_litellm(settings)
    app.state.gateway = Gateway(
        resolver=app.state.resolver, llm=LLMRouter(settings), writer=writer, settings=settings
    )
    try:
        yield
    finally:
        await writer.stop(timeout=settings.shutdown_drain_seconds)
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The chatver ASGI application."""
    settings = settings or Settings()
    app = FastAPI(
        title="chatver",
        version="0.1.0",
        summary="Versioning, A/B testing and rollback for LLM chatbot configurations",
        lifespan=lifespan,
    )
    app.state.settings = settings
    add_exception_handlers(app)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Validation runs before every write, so a constraint firing means a concurrent write won.
        logger.info("integrity conflict on %s: %s", request.url.path, exc.orig)
        return error_response(
            request, Conflict("a concurrent change conflicted with this one; reload and retry")
        )

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if "locked" in str(exc.orig).lower():
            return error_response(
                request, ServiceUnavailable("the database is busy; retry", headers={"Retry-After": "1"})
            )
        logger.exception("database error on %s", request.url.path)
        return error_response(request, ServiceUnavailable("the database is unavailable"))

    for router in (
        health_router,
        keys_router,
        runtime_router,
        lifecycle_router,
        bundles_router,
        experiments_router,
        events_router,
        gateway_router,
    ):
        app.include_router(router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
