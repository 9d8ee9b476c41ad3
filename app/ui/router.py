"""The console's registry pages and actions: sign-in, bundles, versions, diff, stage moves, rollback."""

from __future__ import annotations

import secrets
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth.models import Role
from app.auth.sessions import ENDED
from app.bundles.models import Stage
from app.bundles.schemas import BUNDLE_NAME, MAX_VERSION_NUMBER
from app.bundles.traffic import TrafficDep
from app.cache.resolver import ActiveResolver, ResolvedVersion
from app.db import SessionDep, WriteDep
from app.errors import Forbidden, invalid
from app.fleet import service as fleet
from app.fleet.schemas import FleetMember
from app.lifecycle import service as lifecycle
from app.ui import views
from app.ui.deps import PostedForm, Viewer, console_sessions, role_of
from app.ui.pages import (
    PREFIX,
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    act,
    read_page,
    redirect,
    render,
    secure_cookies,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

BundleName = Annotated[str, Path(pattern=BUNDLE_NAME)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
Reason = Annotated[str, Form(max_length=4000)]
T = TypeVar("T")


def _safe_next(path: str | None) -> str:
    """Only paths of this console (and the API docs): never another host (``//evil``) or scheme."""
    if not path or path.startswith("//") or "\\" in path or not path.isascii():
        return PREFIX
    if path in ("/docs", "/redoc") or path == PREFIX or path.startswith(PREFIX + "/"):
        return path
    return PREFIX


# --- sign-in ------------------------------------------------------------------------------------


def _sign_in_form(
    request: Request, *, next_path: str | None, message: str | None = None, error: str | None = None
) -> Response:
    """The sign-in form, with a fresh double-submit token (there is no session to hold one yet)."""
    token = secrets.token_urlsafe(24)
    context = {"csrf": token, "message": message, "error": error, "next": _safe_next(next_path)}
    response = render(request, "signin.html", context, status=401 if error else 200)
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=f"{PREFIX}/signin",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


@router.get("/signin")
def sign_in_page(
    request: Request,
    ended: Annotated[str | None, Query(max_length=20)] = None,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    return _sign_in_form(request, next_path=next, message=ENDED.get(ended or ""))


@router.post("/signin")
async def sign_in(
    request: Request,
    uow: WriteDep,
    api_key: Annotated[str, Form(max_length=256)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = PREFIX,
) -> Response:
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not csrf or not expected or not secrets.compare_digest(csrf, expected):
        raise Forbidden("the sign-in form expired; reload the page and try again")
    sessions = console_sessions(request)
    signed = await uow.run(lambda session: sessions.sign_in(session=session, api_key=api_key.strip()))
    if signed is None:
        return _sign_in_form(request, next_path=next, error="Unknown or revoked API key.")
    cookie, _ = signed
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(sessions.lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path=f"{PREFIX}/signin")
    return response


@router.post("/signout")
async def sign_out(request: Request, user: PostedForm, uow: WriteDep) -> Response:
    sessions = console_sessions(request)
    await uow.run(lambda session: sessions.sign_out(session=session, user=user))
    response = RedirectResponse(f"{PREFIX}/signin?ended=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- pages --------------------------------------------------------------------------------------


@router.get("")
def bundles_overview(
    request: Request,
    user: Viewer,
    session: SessionDep,
    traffic: TrafficDep,
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    rows = views.overview(session=session, traffic=traffic, query=q.strip())
    return render(request, "bundles.html", {"rows": rows, "q": q})


def _resolver(request: Request) -> ActiveResolver:
    resolver: ActiveResolver = request.app.state.resolver
    return resolver


@router.get("/bundles/{name}")
async def bundle_page(request: Request, name: BundleName, user: Viewer, traffic: TrafficDep) -> Response:
    def load(session: Session) -> views.BundlePage:
        return views.bundle_page(session=session, name=name)

    page = await read_page(request, load)
    plan = await _resolver(request).plan(name)
    production = plan.production if isinstance(plan.production, ResolvedVersion) else None
    serving = {"production": production, "split": plan.experiment}

    def runtimes(session: Session) -> list[FleetMember]:
        return fleet.fleet(session=session, bundle_name=name)

    members = await read_page(request, runtimes)
    context = {"page": page, "serving": serving, "fleet": members, "Role": Role}
    return render(request, "bundle.html", context)


@router.get("/bundles/{name}/versions/{number}")
async def version_page(request: Request, name: BundleName, number: VersionNumber, user: Viewer) -> Response:
    params = request.query_params
    # A field left empty means "use the declared default" (shown as its placeholder).
    render_values = {
        key.removeprefix("var."): value for key, value in params.items() if key.startswith("var.") and value
    }
    wants_render = "render" in params

    def load(session: Session) -> views.VersionPage:
        return views.version_page(
            session=session, name=name, number=number, values=render_values if wants_render else None
        )

    page = await read_page(request, load)
    return render(request, "version.html", {"page": page, "values": render_values, "Role": Role})


@router.get("/bundles/{name}/diff")
async def diff_page(
    request: Request,
    name: BundleName,
    user: Viewer,
    a: Annotated[int, Query(ge=1, le=MAX_VERSION_NUMBER)],
    b: Annotated[int, Query(ge=1, le=MAX_VERSION_NUMBER)],
) -> Response:
    page = await read_page(
        request, lambda session: views.diff_page(session=session, name=name, old_number=a, new_number=b)
    )
    return render(request, "diff.html", {"page": page})


# --- actions ------------------------------------------------------------------------------------


def _bundle_url(name: str) -> str:
    return f"{PREFIX}/bundles/{quote(name)}"


@router.post("/bundles/{name}/rollback")
async def rollback(
    request: Request,
    name: BundleName,
    user: PostedForm,
    uow: WriteDep,
    traffic: TrafficDep,
    reason: Reason = "",
    to: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    role_of(user, Role.approver)
    if not reason.strip():
        return redirect(request, _bundle_url(name), "A rollback needs a reason.", error=True)
    target = int(to) if to.isdigit() else None

    def work(session: Session) -> None:
        lifecycle.rollback(
            session=session,
            bundle_name=name,
            to=target,
            reason=reason.strip(),
            actor=user.principal.name,
            traffic=traffic,
        )

    return await act(request, uow, work, f"Rolled back {name}: production changed.", _bundle_url(name))


@router.post("/bundles/{name}/versions/{number}/stage")
async def move_stage(
    request: Request,
    name: BundleName,
    number: VersionNumber,
    user: PostedForm,
    uow: WriteDep,
    traffic: TrafficDep,
    to: Annotated[str, Form(max_length=20)] = "",
    reason: Reason = "",
) -> Response:
    role_of(user, Role.editor)
    try:
        stage = Stage(to)
    except ValueError:
        raise invalid("to", f"{to!r} is not a stage") from None
    if stage is Stage.production:
        role_of(user, Role.approver)

    def work(session: Session) -> None:
        lifecycle.transition_version(
            session=session,
            bundle_name=name,
            number=number,
            to=stage,
            reason=reason.strip(),
            actor=user.principal,
            traffic=traffic,
        )

    back = f"{_bundle_url(name)}/versions/{number}"
    return await act(request, uow, work, f"{name}@{number} is now in {stage.value}.", back)


@router.post("/bundles/{name}/versions/{number}/approve")
async def approve(
    request: Request,
    name: BundleName,
    number: VersionNumber,
    user: PostedForm,
    uow: WriteDep,
    comment: Reason = "",
) -> Response:
    role_of(user, Role.approver)

    def work(session: Session) -> None:
        lifecycle.approve_version(
            session=session, bundle_name=name, number=number, comment=comment.strip(), actor=user.principal
        )

    back = f"{_bundle_url(name)}/versions/{number}"
    return await act(request, uow, work, f"You approved {name}@{number}.", back)
