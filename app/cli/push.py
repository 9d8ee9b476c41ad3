"""``chatver push DIR``: publish every bundle found as DIR/<name>/bundle.yaml + system.j2."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
VERSION_FIELDS = ("model", "variables", "checkpoint", "params", "semver", "message", "lineage", "metrics")


def load_bundle(directory: Path) -> dict[str, Any]:
    """Read one bundle directory into {name, description, version: <POST body>}."""
    spec = yaml.safe_load((directory / "bundle.yaml").read_text(encoding="utf-8")) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{directory / 'bundle.yaml'}: expected a mapping")
    prompt_file = directory / str(spec.pop("system_prompt_file", "system.j2"))
    body = {k: spec[k] for k in VERSION_FIELDS if spec.get(k) is not None}
    body["system_prompt"] = prompt_file.read_text(encoding="utf-8")
    return {
        "name": spec.get("name", directory.name),
        "description": spec.get("description", ""),
        "version": body,
    }


def _problem(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:500]
    return str(data.get("detail") or data)


def push_directory(root: str) -> int:
    base_url = os.environ.get("CHATVER_URL", "http://127.0.0.1:8000").rstrip("/")
    api_key = os.environ.get("CHATVER_API_KEY")
    if not api_key:
        print("chatver push: set CHATVER_API_KEY", file=sys.stderr)
        return EXIT_USAGE
    directories = sorted(p.parent for p in Path(root).glob("*/bundle.yaml"))
    if not directories:
        print(f"chatver push: no */bundle.yaml under {root}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as client:
        for directory in directories:
            try:
                bundle = load_bundle(directory)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                print(f"chatver push: {exc}", file=sys.stderr)
                status = EXIT_FAILED
                continue
            name = bundle["name"]
            response = client.get(f"/api/bundles/{name}")
            if response.status_code == 404:
                response = client.post(
                    "/api/bundles", json={"name": name, "description": bundle["description"]}
                )
                if response.status_code != 201:
                    print(f"chatver push: creating {name}: {_problem(response)}", file=sys.stderr)
                    status = EXIT_FAILED
                    continue
            response = client.post(f"/api/bundles/{name}/versions", json=bundle["version"])
            if response.status_code == 201:
                print(f"published {response.json()['version_id']} ({response.json()['digest'][:19]}…)")
            elif response.status_code == 200:
                print(f"unchanged {response.json()['version_id']}")
            else:
                print(f"chatver push: {name}: {_problem(response)}", file=sys.stderr)
                status = EXIT_FAILED
    return status
