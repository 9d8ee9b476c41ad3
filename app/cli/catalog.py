"""Reading the registry: bundles, versions, show, diff, and pull (versions back to files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.client import EXIT_USAGE, connect, fail, fetch, out, print_json, split_version_id
from app.cli.files import write_bundle

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    grid = Table(title=title, show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(_cell(v)) for v in row))
    out().print(grid)


def bundles(as_json: JsonOption = False) -> None:
    """List bundles with their production version and running experiment or rollout."""
    found = fetch("/api/bundles")
    if as_json:
        print_json(found)
        return
    rows = [[b["name"], b["versions"], b["production"], b["experiment"] or b.get("rollout")] for b in found]
    table("bundles", ["name", "versions", "production", "experiment/rollout"], rows)


def versions(
    name: Annotated[str, typer.Argument(help="bundle name")],
    stage: Annotated[str | None, typer.Option(help="only versions in this stage")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a bundle's versions, newest first."""
    params = {"stage": stage} if stage else {}
    found = fetch(f"/api/bundles/{name}/versions", **params)
    if as_json:
        print_json(found)
        return
    rows = [
        [v["version_id"], v["stage"], v["semver"], v["model"], v["digest"][:19], v["author"], v["message"]]
        for v in found
    ]
    table(f"versions of {name}", ["version", "stage", "semver", "model", "digest", "author", "message"], rows)


def show(
    version_id: Annotated[str, typer.Argument(metavar="NAME@N", help="e.g. support-bot@4")],
    as_json: JsonOption = False,
) -> None:
    """Show one version: its metadata, config and system prompt."""
    name, number = split_version_id(version_id)
    version = fetch(f"/api/bundles/{name}/versions/{number}")
    if as_json:
        print_json(version)
        return
    fields = ["version_id", "stage", "semver", "digest", "author", "created_at", "message", "parent"]
    fields += ["model", "checkpoint", "params", "variables", "lineage", "metrics"]
    grid = Table(show_header=False, title=version["version_id"])
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for field in fields:
        grid.add_row(field, Text(_cell(version.get(field))))
    out().print(grid)
    out().print(Text("system prompt:", style="bold"))
    out().print(Text(version["system_prompt"]))


def diff(
    name: Annotated[str, typer.Argument(help="bundle name")],
    from_: Annotated[int, typer.Argument(metavar="A", help="older version number", min=1)],
    to: Annotated[int, typer.Argument(metavar="B", help="newer version number", min=1)],
    as_json: JsonOption = False,
) -> None:
    """Compare two versions: a model/params table and a coloured unified diff of the prompt."""
    result = fetch(f"/api/bundles/{name}/diff", **{"from": from_, "to": to})
    if as_json:
        print_json(result)
        return
    changes = result["changes"]
    if changes:
        table(
            f"{result['from']} → {result['to']}",
            ["field", result["from"], result["to"]],
            [[c["field"], c["from"], c["to"]] for c in changes],
        )
    else:
        out().print(f"{result['from']} → {result['to']}: no config field changed", markup=False)
    prompt_diff = result["system_prompt_diff"]
    if not prompt_diff:
        out().print("system prompt unchanged", markup=False)
    for line in prompt_diff.splitlines():
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")
        out().print(Text(line, style="bold " + style if line[:3] in {"+++", "---"} else style))


def pull(
    arguments: Annotated[list[str], typer.Argument(metavar="NAME… DIR", help="bundles, then a directory")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="this version (one bundle only)")
    ] = None,
) -> None:
    """Write bundles back to DIR/<name>/bundle.yaml + system.j2 (production, else the newest version)."""
    if len(arguments) < 2:
        fail("usage: chatver pull NAME… DIR", EXIT_USAGE)
    *names, root = arguments
    if version is not None and len(names) > 1:
        fail("--version takes one bundle", EXIT_USAGE)
    with connect() as api:
        for name in names:
            bundle = api.get(f"/api/bundles/{name}")
            if version is not None:
                number = version
            elif bundle["production"]:
                number = split_version_id(bundle["production"])[1]
            elif bundle["versions"]:
                number = api.get(f"/api/bundles/{name}/versions")[0]["number"]
            else:
                fail(f"bundle {name} has no version to pull")
            found = api.get(f"/api/bundles/{name}/versions/{number}")
            directory = write_bundle(Path(root), bundle, found)
            out().print(f"pulled {found['version_id']} into {directory}", markup=False)
