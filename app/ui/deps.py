"""Who is signed in to the console, what their role lets them do, and the CSRF check of every form."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Form, Request
from starlette.concurrency import run_in_threadpool

from app.auth.models import Role
from app.auth.sessions import ConsoleSessions, ConsoleUser, SessionEnded
from app.db import read_session
from app.errors import Forbidden
from app.ui.pages import SESSION_COOKIE, SignInRequired


def console_sessions(request: Request) -> ConsoleSessions:
    sessions: ConsoleSessions = request.app.state.console_sessions
    return sessions


def _next_path(request: Request) -> str | None:
    """Where to return after signing in: this page with its query (for a live fragment, its page)."""
    if request.method != "GET":
        return None
    path = request.url.path
    if path.startswith("/ui/experiments/") and path.endswith("/results"):
        path = path.removesuffix("/results")
    return f"{path}?{request.url.query}" if request.url.query else path


async def console_user(request: Request) -> ConsoleUser:
    """The signed-in user, checked against the database on every request (expiry, sign-out, a
    revoked key); otherwise the browser is sent to the sign-in page with the reason."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInRequired("required", _next_path(request))
    sessions = console_sessions(request)

    def check() -> ConsoleUser:
        with read_session(request.app.state.engine) as session:
            return sessions.user(session=session, cookie=cookie)

    try:
        user = await run_in_threadpool(check)
    except SessionEnded as ended:
        raise SignInRequired(ended.code, _next_path(request)) from ended
    request.state.console_user = user
    return user


def require(role: Role) -> Callable[[ConsoleUser], Awaitable[ConsoleUser]]:
    async def check(user: Annotated[ConsoleUser, Depends(console_user)]) -> ConsoleUser:
        if not user.principal.has(role):
            raise Forbidden(
                f"this needs the {role.name} role; you are signed in as {user.principal.name!r}, "
                f"a {user.principal.role.name} key"
            )
        return user

    return check


async def checked_form(
    user: Annotated[ConsoleUser, Depends(console_user)], csrf: Annotated[str, Form(max_length=200)] = ""
) -> ConsoleUser:
    """Every state-changing form carries the session's CSRF token; without it nothing happens."""
    if not csrf or not hmac.compare_digest(csrf, user.csrf_token):
        raise Forbidden("the form's security token is missing or wrong; reload the page and try again")
    return user


Viewer = Annotated[ConsoleUser, Depends(require(Role.runtime))]
AdminUser = Annotated[ConsoleUser, Depends(require(Role.admin))]
PostedForm = Annotated[ConsoleUser, Depends(checked_form)]


def role_of(user: ConsoleUser, role: Role) -> ConsoleUser:
    """For a form already CSRF-checked: refuse a role too low (the buttons are hidden, but the
    server decides)."""
    if not user.principal.has(role):
        raise Forbidden(
            f"this needs the {role.name} role; {user.principal.name!r} is a {user.principal.role.name} key"
        )
    return user
