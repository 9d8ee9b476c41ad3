"""create_app(): lifespan (engine, caches, bootstrap key), routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from app.auth import service as auth_service
from app.auth.router import router as keys_router
from app.auth.service import Authenticator
from app.auth.sessions import ConsoleSessions, shared_secret
from app.bundles.providers import known_providers
from app.bundles.router import router as bundles_router
from app.cache.resolver import ActiveResolver
from app.changes import ChangeFeed
from app.db import create_db_engine, is_busy, is_unique_violation, run_in_transaction
from app.errors import ChatverError, Conflict, ServiceUnavailable, add_exception_handlers, respond
from app.events.router import router as events_router
from app.events.telemetry import Telemetry
from app.events.writer import EventWriter
from app.experiments.router import router as experiments_router
from app.fleet.reporter import FleetReporter
from app.fleet.router import router as fleet_router
from app.gateway.llm import LLMRouter, configure_litellm
from app.gateway.router import router as gateway_router
from app.gateway.service import Gateway
from app.health.router import router as health_router
from app.lifecycle.router import router as lifecycle_router
from app.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from app.rollouts import service as rollouts_service
from app.rollouts.controller import RolloutController
from app.rollouts.router import router as rollouts_router
from app.rollouts.traffic import TRAFFIC
from app.runtime.router import router as runtime_router
from app.settings import Settings
from app.ui.docs import router as docs_router
from app.ui.experiment_pages import router as experiment_pages_router
from app.ui.key_pages import router as key_pages_router
from app.ui.pages import STATIC as UI_STATIC
from app.ui.pages import error_page
from app.ui.router import router as console_router

logger = logging.getLogger("chatver")


def _bootstrap(app: FastAPI) -> None:
    settings: Settings = app.state.settings

    def seed() -> str | None:
        return run_in_transaction(
            app.state.engine,
            app.state.changes,
            lambda s: auth_service.ensure_bootstrap_key(session=s, admin_key=settings.admin_key),
        )

    try:
        secret = seed()
    except IntegrityError:
        # Another worker or replica seeded the same key at the same moment; it is there now.
        secret = seed()
    if secret:
        # Printed once, on purpose: there was no key at all, so nobody could manage chatver.
        print(f"chatver: generated the first admin API key (shown once): {secret}", flush=True)


def _console(app: FastAPI) -> None:
    """Console sessions and flash messages, signed with a secret every replica shares."""
    settings: Settings = app.state.settings

    def load(session: Session) -> str:
        return shared_secret(session=session, configured=settings.session_secret)

    secret = run_in_transaction(app.state.engine, app.state.changes, load)
    lifetime = timedelta(hours=settings.console_session_hours)
    app.state.console_sessions = ConsoleSessions(secret, lifetime=lifetime)
    app.state.console_flash = URLSafeTimedSerializer(secret, salt="chatver.console.flash")


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
    _console(app)
    telemetry = Telemetry()
    app.state.telemetry = telemetry
    writer = EventWriter(engine, telemetry, max_queue=settings.event_queue_max)
    app.state.event_writer = writer
    app.state.experiment_lookup = rollouts_service.scope_arms
    app.state.traffic = TRAFFIC
    writer.start()
    configure_litellm(settings)
    reporter = FleetReporter(engine, interval=settings.fleet_report_seconds)
    app.state.fleet_reporter = reporter
    app.state.gateway = Gateway(
        resolver=app.state.resolver,
        llm=LLMRouter(settings),
        writer=writer,
        settings=settings,
        on_served=reporter.served,
    )
    reporter.start()
    controller = RolloutController(engine, feed, interval=settings.rollout_check_seconds)
    app.state.rollouts = controller
    if settings.rollout_check_seconds > 0:
        controller.start()
    try:
        yield
    finally:
        await controller.stop()
        await reporter.stop()
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
        # Served by app.ui.docs to API keys and console sessions only.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    add_exception_handlers(app, pages=error_page)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Rules are checked before every write, so a unique index firing means a concurrent
        # write got there first. Any other integrity error is a bug and stays a logged 500.
        if not is_unique_violation(exc):
            logger.error("integrity error on %s", request.url.path, exc_info=exc)
            return respond(request, ChatverError("internal error"))
        logger.info("unique conflict on %s: %s", request.url.path, exc.orig)
        return respond(request, Conflict("a concurrent change conflicted with this one; reload and retry"))

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        if is_busy(exc):
            busy = ServiceUnavailable("the database is busy; retry", headers={"Retry-After": "1"})
            return respond(request, busy)
        logger.error("database error on %s", request.url.path, exc_info=exc)
        return respond(request, ServiceUnavailable("the database is unavailable"))

    @app.exception_handler(PoolTimeout)
    async def _pool(request: Request, exc: PoolTimeout) -> Response:
        logger.warning("database pool exhausted on %s", request.url.path)
        busy = ServiceUnavailable(
            "too many requests wait for the database; retry", headers={"Retry-After": "1"}
        )
        return respond(request, busy)

    for router in (
        health_router,
        keys_router,
        runtime_router,
        lifecycle_router,
        bundles_router,
        experiments_router,
        rollouts_router,
        events_router,
        gateway_router,
        fleet_router,
        docs_router,
        console_router,
        experiment_pages_router,
        key_pages_router,
    ):
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=UI_STATIC), name="console-static")

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
