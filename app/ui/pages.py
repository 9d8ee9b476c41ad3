"""Rendering console pages: the Jinja2 environment, flash messages, and HTML error pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth.models import Role
from app.db import UnitOfWork, read_session
from app.dbtypes import rfc3339
from app.errors import ChatverError

logger = logging.getLogger("chatver.ui")

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
NONE = "\u2013"  # an en dash for a missing number


def _when(moment: datetime | None) -> str:
    return rfc3339(moment).replace("T", " ")[:19] + " UTC" if moment else NONE


def _pct(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{100 * value:.{digits}f}%"


def _signed_pct(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{100 * value:+.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


TEMPLATES.env.filters.update(when=_when, pct=_pct, signed_pct=_signed_pct, num=_num)
TEMPLATES.env.globals["Role"] = Role

T = TypeVar("T")
PREFIX = "/ui"
SESSION_COOKIE = "chatver_session"
FLASH_COOKIE = "chatver_flash"
SIGNIN_CSRF_COOKIE = "chatver_signin"
FLASH_SECONDS = 120
# Only this server's own scripts and styles, never framed: a stored XSS or clickjacking finds nothing to load.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def _flash_signer(request: Request) -> URLSafeTimedSerializer:
    signer: URLSafeTimedSerializer = request.app.state.console_flash
    return signer


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page, with the flash message of the last action (then forgotten) and the signed-in user."""
    flash = None
    raw = request.cookies.get(FLASH_COOKIE)
    if raw:
        try:
            flash = _flash_signer(request).loads(raw, max_age=FLASH_SECONDS)
        except BadSignature:
            flash = None
    context = {"flash": flash, "user": getattr(request.state, "console_user", None), **context}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    if raw:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def redirect(request: Request, url: str, message: str | None = None, *, error: bool = False) -> Response:
    """303 to ``url`` (after a form post), carrying one message for the next page."""
    response = RedirectResponse(url, status_code=303)
    if message is not None:
        value = _flash_signer(request).dumps({"kind": "error" if error else "ok", "text": message})
        response.set_cookie(
            FLASH_COOKIE,
            value,
            max_age=FLASH_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
    return response


def secure_cookies(request: Request) -> bool:
    """Mark console cookies Secure: always with CHATVER_SECURE_COOKIES, else when the request is https."""
    return bool(request.app.state.settings.secure_cookies) or request.url.scheme == "https"


def sign_in_url(reason: str, next_path: str | None = None) -> str:
    url = f"{PREFIX}/signin?ended={quote(reason)}"
    return url + (f"&next={quote(next_path)}" if next_path else "")


class SignInRequired(ChatverError):
    """The page needs a signed-in console user; rendered as a redirect to the sign-in page."""

    status = 401
    title = "Unauthorized"

    def __init__(self, reason: str, next_path: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_path = next_path


def error_page(request: Request, exc: ChatverError) -> Response | None:
    """Errors under /ui as pages: sign-in redirects, 403, 404, 4xx with the detail, 500 with an id."""
    if not (request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")):
        return None
    if isinstance(exc, SignInRequired):
        return RedirectResponse(sign_in_url(exc.reason, exc.next_path), status_code=303)
    if exc.status >= 500:
        logger.warning("console error on %s: %s", request.url.path, exc.detail)
    context = {"status": exc.status, "title": exc.title, "detail": exc.detail, "errors": exc.errors}
    return render(request, "error.html", context, status=exc.status)


async def read_page(request: Request, load: Callable[[Session], T]) -> T:
    """Page data is read in a worker thread (the services are synchronous), in one read session."""

    def run() -> T:
        with read_session(request.app.state.engine) as session:
            return load(session)

    return await run_in_threadpool(run)


async def act(
    request: Request, uow: UnitOfWork, work: Callable[[Session], object], done: str, back: str
) -> Response:
    """Run one domain action; the page shows its result, or the refusal in one clear line."""
    try:
        await uow.run(work)
    except ChatverError as exc:
        if exc.status in (401, 403):
            raise
        return redirect(request, back, exc.detail, error=True)
    return redirect(request, back, done)
