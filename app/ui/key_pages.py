"""The console's API-key pages (admin): list, create (the secret shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import service as keys
from app.auth.models import Role
from app.auth.router import KeyCreate
from app.db import WriteDep
from app.errors import ChatverError
from app.ui.deps import AdminUser, PostedForm, role_of
from app.ui.pages import PREFIX, act, read_page, redirect, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

KEYS_URL = f"{PREFIX}/keys"


@router.get("/keys")
async def keys_page(request: Request, user: AdminUser) -> Response:
    listed = await read_page(request, lambda session: keys.list_keys(session=session))
    return render(request, "keys.html", {"keys": listed, "roles": [r.name for r in Role], "created": None})


@router.post("/keys")
async def create_key(
    request: Request,
    user: PostedForm,
    uow: WriteDep,
    name: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=16)] = "runtime",
) -> Response:
    role_of(user, Role.admin)
    try:
        body = KeyCreate.model_validate({"name": name.strip(), "role": role})
    except ValidationError:
        message = "A key needs a name of letters, digits and _.@- (up to 64), and a role."
        return redirect(request, KEYS_URL, message, error=True)

    def work(session: Session) -> tuple[str, str]:
        key, secret = keys.issue_key(
            session=session, name=body.name, role=Role[body.role], created_by=user.principal.name
        )
        return key.name, secret

    try:
        created_name, secret = await uow.run(work)
    except ChatverError as exc:
        return redirect(request, KEYS_URL, exc.detail, error=True)
    listed = await read_page(request, lambda session: keys.list_keys(session=session))
    # The secret is shown on this response only: never stored, never put in a redirect or a cookie.
    created = {"name": created_name, "secret": secret}
    context = {"keys": listed, "roles": [r.name for r in Role], "created": created}
    return render(request, "keys.html", context, status=201)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    request: Request,
    key_id: Annotated[str, Path(pattern=r"^key_[0-9a-f]{16}$")],
    user: PostedForm,
    uow: WriteDep,
) -> Response:
    role_of(user, Role.admin)
    return await act(
        request,
        uow,
        lambda session: keys.revoke_key(session=session, key_id=key_id),
        "Key revoked: it fails its next request everywhere.",
        KEYS_URL,
    )
