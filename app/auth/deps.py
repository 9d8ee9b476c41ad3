"""Authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.auth.models import Role
from app.auth.service import Authenticator, Principal
from app.errors import Forbidden, Unauthorized


async def current_key(request: Request) -> Principal:
    """The caller's key, from ``Authorization: Bearer <key>``; 401 when missing or invalid."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing Authorization: Bearer <api key> header")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > 256:
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(secret)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    request.state.principal = principal
    return principal


def require_role(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through keys of ``role`` or above; 403 otherwise."""

    async def check(principal: Annotated[Principal, Depends(current_key)]) -> Principal:
        if not principal.has(role):
            raise Forbidden(
                f"this action needs the {role.name} role; key {principal.name!r} is {principal.role.name}"
            )
        return principal

    check.__name__ = f"require_{role.name}"
    return check


CurrentKey = Annotated[Principal, Depends(current_key)]
RuntimeKey = Annotated[Principal, Depends(require_role(Role.runtime))]
EditorKey = Annotated[Principal, Depends(require_role(Role.editor))]
ApproverKey = Annotated[Principal, Depends(require_role(Role.approver))]
AdminKey = Annotated[Principal, Depends(require_role(Role.admin))]
