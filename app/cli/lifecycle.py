"""Moving versions: stage, approve, promote, rollback, and the history of it all."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.catalog import JsonOption, table
from app.cli.client import EXIT_DRIFT, fetch, out, print_json, send

Name = Annotated[str, typer.Argument(help="bundle name")]
Number = Annotated[int, typer.Argument(help="version number", min=1)]
STAGES = ("draft", "staging", "validation", "production", "archived")


def _transition(name: str, number: int, to: str, reason: str) -> None:
    record = send(f"/api/bundles/{name}/versions/{number}/transitions", {"to": to, "reason": reason})
    out().print(f"{record['version_id']}: {record['from_stage']} → {record['to_stage']}", markup=False)


def stage(
    name: Name,
    number: Number,
    to: Annotated[str, typer.Argument(metavar="TO", help="staging, validation, production or archived")],
    reason: Annotated[str, typer.Option(help="why, for the history")] = "",
) -> None:
    """Move a version to another stage."""
    if to not in STAGES:
        raise typer.BadParameter(f"must be one of {', '.join(STAGES[1:])}", param_hint="TO")
    _transition(name, number, to, reason)


def promote(
    name: Name,
    number: Number,
    reason: Annotated[str, typer.Option(help="why, for the history")] = "",
) -> None:
    """Promote a validated, approved version to production."""
    _transition(name, number, "production", reason)


def approve(
    name: Name,
    number: Number,
    comment: Annotated[str, typer.Option(help="a note for the history")] = "",
) -> None:
    """Approve a version for production (not your own)."""
    approval = send(f"/api/bundles/{name}/versions/{number}/approvals", {"comment": comment})
    out().print(f"approved {approval['version_id']} as {approval['approver']}", markup=False)


def rollback(
    name: Name,
    reason: Annotated[str, typer.Option(help="why (required)")],
    to: Annotated[int | None, typer.Option(help="this earlier production version", min=1)] = None,
) -> None:
    """Put the previous (or a given earlier) production version back at once."""
    body: dict[str, object] = {"reason": reason}
    if to is not None:
        body["to"] = to
    result = send(f"/api/bundles/{name}/rollback", body)
    out().print(f"rolled back {result['from']} → {result['to']}", markup=False)


def _move(record: dict[str, str | None]) -> str:
    return f"{record['from_stage'] or '-'} → {record['to_stage']}"


def history(
    name: Name,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    as_json: JsonOption = False,
) -> None:
    """Transition records of a bundle, newest first."""
    records = fetch(f"/api/bundles/{name}/history", limit=limit)
    if as_json:
        print_json(records)
        return
    rows = [[r["at"], r["version_id"], r["kind"], _move(r), r["actor"], r["reason"]] for r in records]
    table(f"history of {name}", ["at", "version", "kind", "move", "actor", "reason"], rows)


def fleet(
    name: Annotated[str, typer.Argument(help="bundle name")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Every runtime heard from in the last 5 minutes, the version it serves and whether it is behind;
    exits 3 while any is behind (e.g. a rollback has not reached it yet)."""
    members = fetch(f"/api/bundles/{name}/fleet")
    if as_json:
        print_json(members)
    else:
        rows = [
            [
                m["runtime_id"],
                m["kind"],
                m["version_id"],
                "current" if m["current"] else f"BEHIND {m['behind_seconds'] or 0:.0f}s",
                "stale" if m["stale"] else "",
                m["last_seen_at"],
            ]
            for m in members
        ]
        table(f"fleet of {name}", ["runtime", "kind", "serves", "state", "cache", "last seen"], rows)
    if any(not m["current"] for m in members):
        raise typer.Exit(EXIT_DRIFT)
