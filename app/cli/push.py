"""``chatver push DIR…``: publish bundles from files; ``--dry-run`` and ``--check`` for CI."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import Progress
from rich.text import Text

from app.cli.client import EXIT_DRIFT, EXIT_FAILED, EXIT_USAGE, Api, connect, err, fail, out, problem_line
from app.cli.files import BundleFileError, LocalBundle, bundle_directories, git_lineage, load_bundle

CONFIG_FIELDS = ("model", "variables", "checkpoint", "params")


@dataclass
class Remote:
    """What the server holds of one local bundle."""

    exists: bool
    versions: list[dict[str, Any]] = field(default_factory=list)  # newest first

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.versions[0] if self.versions else None

    def matching(self, digest: str) -> dict[str, Any] | None:
        return next((v for v in self.versions if v["digest"] == digest), None)


def load_all(roots: list[Path]) -> list[LocalBundle]:
    """Every bundle under the roots, all validated before anything is sent (a bad one stops the batch)."""
    directories = bundle_directories(roots)
    if not directories:
        fail(f"no bundle.yaml in or one level under {', '.join(map(str, roots))}", EXIT_USAGE)
    bundles: list[LocalBundle] = []
    problems: list[str] = []
    for directory in directories:
        try:
            bundles.append(load_bundle(directory))
        except BundleFileError as exc:
            problems.append(str(exc))
    seen: dict[str, Path] = {}
    for bundle in bundles:
        if bundle.name in seen:
            problems.append(f"{bundle.directory}: bundle {bundle.name} is also in {seen[bundle.name]}")
        seen[bundle.name] = bundle.directory
    if problems:
        for problem in problems:
            err().print(f"chatver: {problem}", markup=False)
        fail(f"{len(problems)} invalid bundle(s); nothing was published")
    return bundles


def remote_state(api: Api, bundle: LocalBundle) -> Remote:
    if api.get_or_none(f"/api/bundles/{bundle.name}") is None:
        return Remote(exists=False)
    return Remote(exists=True, versions=api.get(f"/api/bundles/{bundle.name}/versions"))


def print_local_diff(bundle: LocalBundle, latest: dict[str, Any] | None) -> None:
    """The files against the newest version: changed config fields, then a unified prompt diff."""
    console = out()
    old_id = latest["version_id"] if latest else "(nothing published)"
    console.print(Text(f"{bundle.name}: files differ from {old_id}", style="bold"))
    for name in CONFIG_FIELDS:
        old = latest.get(name) if latest else None
        new = bundle.config[name]
        if (old or None) != (new or None):
            console.print(Text(f"  {name}: {old!r} → {new!r}", style="yellow"))
    old_prompt = latest["system_prompt"] if latest else ""
    lines = difflib.unified_diff(
        old_prompt.splitlines(keepends=True),
        bundle.config["system_prompt"].splitlines(keepends=True),
        fromfile=old_id,
        tofile=str(bundle.directory / "system.j2"),
    )
    for line in lines:
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")
        console.print(Text(line.rstrip("\n"), style=style))


def _semver_conflict(bundle: LocalBundle, remote: Remote) -> str | None:
    semver = bundle.body.get("semver")
    if not semver or remote.matching(bundle.digest):
        return None
    taken = next((v for v in remote.versions if v.get("semver") == str(semver).removeprefix("v")), None)
    if taken:
        return f"{bundle.directory}: semver {semver} is already used by {taken['version_id']}; bump it"
    return None


def dry_run(bundles: list[LocalBundle], states: list[Remote]) -> int:
    pending = 0
    for bundle, remote in zip(bundles, states, strict=True):
        existing = remote.matching(bundle.digest)
        if existing:
            out().print(f"unchanged {existing['version_id']}", markup=False)
            continue
        pending += 1
        print_local_diff(bundle, remote.latest)
    if pending:
        out().print(f"{pending} bundle(s) would be published", markup=False)
        return EXIT_DRIFT
    return 0


def check(bundles: list[LocalBundle], states: list[Remote]) -> int:
    """Drift both ways: files not published, and server versions newer than what the files hold."""
    drift = 0
    for bundle, remote in zip(bundles, states, strict=True):
        existing = remote.matching(bundle.digest)
        if existing is None:
            drift += 1
            out().print(f"{bundle.name}: files are not published ({bundle.directory})", markup=False)
        newer = [v["version_id"] for v in remote.versions if not existing or v["number"] > existing["number"]]
        if newer:
            drift += 1
            shown = ", ".join(reversed(newer[:5])) + (f" and {len(newer) - 5} more" if len(newer) > 5 else "")
            out().print(f"{bundle.name}: the server has {shown} that the files do not hold", markup=False)
        if existing is not None and not newer:
            out().print(f"in sync {existing['version_id']}", markup=False)
    if drift:
        out().print(f"drift in {drift} place(s)", markup=False)
        return EXIT_DRIFT
    return 0


def server_check(api: Api, bundles: list[LocalBundle], states: list[Remote]) -> None:
    """Ask the server to check every bundle that would be published, before writing any: a batch
    the server would refuse in part (an unknown provider, an api_base not allowed, a semver taken)
    publishes nothing."""
    problems = []
    for bundle, remote in zip(bundles, states, strict=True):
        if remote.matching(bundle.digest) is not None:
            continue
        try:
            response = api.http.post(f"/api/bundles/{bundle.name}/versions/check", json=dict(bundle.body))
        except httpx.HTTPError as exc:
            fail(f"cannot reach {api.http.base_url}: {exc}")
        if response.status_code >= 400:
            problems.append(f"{bundle.directory}: {problem_line(response)}")
    if problems:
        for problem in problems:
            err().print(f"chatver: {' '.join(problem.split())}", markup=False)
        fail(f"{len(problems)} bundle(s) refused by the server; nothing was published")


def publish(api: Api, bundles: list[LocalBundle], states: list[Remote]) -> int:
    server_check(api, bundles, states)
    with Progress(console=err(), transient=True) as progress:
        task = progress.add_task("publishing", total=len(bundles))
        for bundle, remote in zip(bundles, states, strict=True):
            progress.update(task, description=f"publishing {bundle.name}")
            if not remote.exists:
                api.post("/api/bundles", {"name": bundle.name, "description": bundle.description})
            body = dict(bundle.body)
            body["lineage"] = {**body.get("lineage", {}), **git_lineage(bundle.directory)}
            response = api.request("POST", f"/api/bundles/{bundle.name}/versions", json_body=body)
            version = response.json()
            verb = "published" if response.status_code == 201 else "unchanged"
            out().print(f"{verb} {version['version_id']}", markup=False)
            progress.advance(task)
    return 0


def push(
    directories: Annotated[
        list[Path], typer.Argument(metavar="DIR…", help="bundle directories, or folders of them")
    ],
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="print what would change; exit 3 if anything would")
    ] = False,
    check_: Annotated[
        bool, typer.Option("--check", help="report drift between files and server both ways; exit 3 on drift")
    ] = False,
) -> None:
    """Publish DIR/<bundle>/bundle.yaml + system.j2 (unchanged configs publish nothing)."""
    if dry_run_ and check_:
        fail("use --dry-run or --check, not both", EXIT_USAGE)
    bundles = load_all(directories)
    with connect() as api:
        states = [remote_state(api, bundle) for bundle in bundles]
        if dry_run_:
            raise typer.Exit(dry_run(bundles, states))
        if check_:
            raise typer.Exit(check(bundles, states))
        conflicts = [c for b, s in zip(bundles, states, strict=True) if (c := _semver_conflict(b, s))]
        if conflicts:
            for conflict in conflicts:
                err().print(f"chatver: {conflict}", markup=False)
            fail("nothing was published", EXIT_FAILED)
        status = publish(api, bundles, states)
    raise typer.Exit(status)
