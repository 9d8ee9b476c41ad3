"""``chatver keys …``: issue, list and revoke API keys (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.catalog import JsonOption, table
from app.cli.client import err, fetch, out, print_json, remove, send

keys_app = typer.Typer(help="API keys (admin).", no_args_is_help=True)
ROLES = ("runtime", "editor", "approver", "admin")


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="who or what uses the key, e.g. ci")],
    role: Annotated[str, typer.Option(help="runtime, editor, approver or admin")] = "runtime",
    as_json: JsonOption = False,
) -> None:
    """Issue a key; its secret is printed once and never again."""
    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    created = send("/api/keys", {"name": name, "role": role})
    if as_json:
        print_json(created)
        return
    err().print(f"created key {created['id']} ({created['name']}, {created['role']}); secret:", markup=False)
    out().print(created["key"], markup=False)


@keys_app.command("list")
def list_keys(as_json: JsonOption = False) -> None:
    """Every key, without secrets."""
    found = fetch("/api/keys")
    if as_json:
        print_json(found)
        return
    rows = [[k["id"], k["name"], k["role"], k["prefix"], k["created_at"], k["revoked_at"]] for k in found]
    table("API keys", ["id", "name", "role", "prefix", "created", "revoked"], rows)


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(metavar="ID", help="the key's id")]) -> None:
    """Revoke a key at once."""
    revoked = remove(f"/api/keys/{key_id}")
    out().print(f"revoked {revoked['id']} ({revoked['name']})", markup=False)
