"""The CLI's side of the HTTP contract: one httpx client, problem details as one line, exit codes."""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DRIFT = 0, 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:8000"


def out() -> Console:
    """Standard output, looked up at call time so that test runners can capture it."""
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``chatver: <message>`` on one line of stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    err().print(f"chatver: {one_line}", markup=False)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def problem_line(response: httpx.Response) -> str:
    """A refusal as one line: status, the problem's ``detail``, and its first field error."""
    prefix = f"refused ({response.status_code} {response.reason_phrase})"
    try:
        problem = response.json()
    except ValueError:
        text = response.text.strip()[:300]
        return f"{prefix}: {text}" if text else prefix
    if not isinstance(problem, dict):
        return f"{prefix}: {str(problem)[:300]}"
    detail = str(problem.get("detail") or problem.get("title") or "")
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = f"{errors[0].get('field')}: {errors[0].get('message')}"
        if first not in detail:
            detail = f"{detail} ({first})" if detail else first
    return f"{prefix}: {detail}" if detail else prefix


class Api:
    """A thin client of the management API; every non-2xx answer ends the command with one line."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, json=json_body, params=params)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.http.base_url}: {exc}")
        if response.status_code >= 400:
            fail(problem_line(response))
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self.request("GET", path, params=params or None))

    def post(self, path: str, body: Any = None) -> Any:
        return self._json(self.request("POST", path, json_body=body))

    def delete(self, path: str) -> Any:
        return self._json(self.request("DELETE", path))

    def _json(self, response: httpx.Response) -> Any:
        """The body as JSON (None when empty); anything else is one clear line, not a traceback."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            fail(
                f"{self.http.base_url} answered {response.status_code} with {kind}, not JSON: is it chatver?"
            )

    def get_or_none(self, path: str) -> Any:
        """The JSON body, or None on a 404 (any other refusal still ends the command)."""
        try:
            response = self.http.get(path)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.http.base_url}: {exc}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            fail(problem_line(response))
        return self._json(response)


def connect() -> Api:
    """An Api for CHATVER_URL with CHATVER_API_KEY; a missing key is a usage error."""
    base_url = os.environ.get("CHATVER_URL", DEFAULT_URL).rstrip("/")
    api_key = os.environ.get("CHATVER_API_KEY", "").strip()
    if not api_key:
        fail("set CHATVER_API_KEY to an API key of the server at " + base_url, EXIT_USAGE)
    if not base_url.startswith(("http://", "https://")):
        fail(f"CHATVER_URL must be an http(s) URL, not {base_url!r}", EXIT_USAGE)
    if not api_key.isascii() or not api_key.isprintable():
        fail("CHATVER_API_KEY holds characters no chatver key has; check its value", EXIT_USAGE)
    try:
        http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "chatver-cli"},
            timeout=30,
        )
    except (httpx.InvalidURL, ValueError) as exc:
        fail(f"CHATVER_URL is not a usable URL ({exc})", EXIT_USAGE)
    return Api(http)


def split_version_id(value: str) -> tuple[str, int]:
    """``support-bot@4`` → ("support-bot", 4); anything else is a usage error."""
    name, at, number = value.partition("@")
    if not at or not number.isdigit() or not name:
        fail(f"expected NAME@N (e.g. support-bot@4), not {value!r}", EXIT_USAGE)
    return name, int(number)


def fetch(path: str, **params: Any) -> Any:
    """One GET on its own connection."""
    with connect() as api:
        return api.get(path, **params)


def send(path: str, body: Any = None) -> Any:
    """One POST on its own connection."""
    with connect() as api:
        return api.post(path, body)


def remove(path: str) -> Any:
    """One DELETE on its own connection."""
    with connect() as api:
        return api.delete(path)
