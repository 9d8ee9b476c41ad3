"""/api/keys: issue, list and revoke API keys (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlmodel import Session

from app.auth import service
from app.auth.deps import AdminKey
from app.auth.models import ApiKey, Role
from app.db import SessionDep, WriteDep
from app.dbtypes import rfc3339
from app.schemas import RequestModel

router = APIRouter(prefix="/api/keys", tags=["keys"])

KeyId = Annotated[str, Path(pattern=r"^key_[0-9a-f]{16}$", description="e.g. key_1a2b3c4d5e6f7a8b")]


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
async def create_key(body: KeyCreate, uow: WriteDep, admin: AdminKey) -> KeyCreated:
    def work(session: Session) -> KeyCreated:
        key, secret = service.issue_key(
            session=session, name=body.name, role=Role[body.role], created_by=admin.name
        )
        return KeyCreated(**_public(key).model_dump(), key=secret)

    return await uow.run(work)


@router.get("")
def list_keys(session: SessionDep, _: AdminKey) -> list[KeyPublic]:
    return [_public(k) for k in service.list_keys(session=session)]


@router.delete("/{key_id}")
async def revoke_key(uow: WriteDep, _: AdminKey, key_id: KeyId) -> KeyPublic:
    return await uow.run(lambda session: _public(service.revoke_key(session=session, key_id=key_id)))
