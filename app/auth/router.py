"""/api/keys: issue, list and revoke API keys (admin)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.auth import service
from app.auth.deps import AdminKey
from app.auth.models import ApiKey, Role
from app.db import SessionDep
from app.dbtypes import rfc3339
from app.schemas import RequestModel

router = APIRouter(prefix="/api/keys", tags=["keys"])


class KeyCreate(RequestModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    role: Literal["runtime", "editor", "approver", "admin"]


class KeyPublic(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    created_by: str
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyPublic):
    key: str


def _public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        name=key.name,
        role=key.role,
        prefix=key.prefix,
        created_by=key.created_by,
        created_at=rfc3339(key.created_at),
        revoked_at=rfc3339(key.revoked_at) if key.revoked_at else None,
    )


@router.post("", status_code=201)
def create_key(body: KeyCreate, session: SessionDep, admin: AdminKey) -> KeyCreated:
    key, secret = service.issue_key(
        session=session, name=body.name, role=Role[body.role], created_by=admin.name
    )
    return KeyCreated(**_public(key).model_dump(), key=secret)


@router.get("")
def list_keys(session: SessionDep, _: AdminKey) -> list[KeyPublic]:
    return [_public(k) for k in service.list_keys(session=session)]


@router.delete("/{key_id}")
def revoke_key(session: SessionDep, _: AdminKey, key_id: str = Path(max_length=40)) -> KeyPublic:
    return _public(service.revoke_key(session=session, key_id=key_id))
