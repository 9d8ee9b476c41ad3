"""Console test helpers: a browser-like client per signed-in key."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api
from tests.llm import GATEWAY_PARAMS

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """One browser: its own cookie jar (swapped into the test's client around each request)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.jar: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()
        for name, value in self.jar.items():
            self.client.cookies.set(name, value)
        try:
            response = self.client.request(method, path, follow_redirects=False, **kwargs)
        finally:
            self.jar = {cookie.name: cookie.value or "" for cookie in self.client.cookies.jar}
            self.client.cookies.clear()
        return response

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, **data: str) -> Any:
        return self.request("POST", path, data=data)

    def sign_in(self, secret: str) -> Any:
        form = self.get("/ui/signin")
        token = CSRF.search(form.text)
        assert token, form.text
        return self.post("/ui/signin", api_key=secret, csrf=token.group(1), next="/ui")

    def csrf(self) -> str:
        page = self.get("/ui")
        token = CSRF.search(page.text)
        assert page.status_code == 200 and token, page.text
        return token.group(1)


def secret(api: Api, role: str) -> str:
    return api.keys[role]["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def console(api: Api) -> Callable[[str], Console]:
    """console(role) → a Console signed in with that test key."""

    def open_as(role: str) -> Console:
        browser = Console(api.client)
        response = browser.sign_in(secret(api, role))
        assert response.status_code == 303, response.text
        return browser

    return open_as


@pytest.fixture
def shipped(api: Api) -> Api:
    """support-bot with v1 then v2 in production: there is something to roll back to."""
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS, message="first")
    api.to_production(1)
    api.publish(
        params={**GATEWAY_PARAMS, "temperature": 0.9},
        system_prompt="You are {{ company }}'s agent.\nBe brief. Answer in a {{ tone }} tone.",
        message="shorter answers",
    )
    api.to_production(2)
    return api


def active_version(api: Api) -> str:
    body = api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"]).json()
    return str(body["version_id"])
