"""Fixtures: a fresh migrated database per test (SQLite and PostgreSQL), the app, and keys."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db import normalize_database_url
from app.main import create_app
from app.migrate import upgrade_database
from app.settings import Settings

ADMIN_KEY = "cv_test_admin_key_0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("CHATVER_TEST_POSTGRES_URL")
ALLOWED_API_BASE = "http://127.0.0.1:9999"


def _need(service: str, env: str) -> None:
    message = f"{service} is not running: start the suite with scripts/test.sh (sets {env})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def _admin_url(url: str, database: str) -> str:
    return make_url(normalize_database_url(url)).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if not POSTGRES_URL:
        _need("PostgreSQL", "CHATVER_TEST_POSTGRES_URL")
    assert POSTGRES_URL
    template = f"chatver_template_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{template}"'))
    upgrade_database(_admin_url(POSTGRES_URL, template))
    yield template
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database whose schema came from the real migrations."""
    if request.param == "sqlite":
        path = tmp_path / "chatver.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    assert POSTGRES_URL
    name = f"chatver_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _admin_url(POSTGRES_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "allowed_api_bases": ALLOWED_API_BASE,
        "cache_ttl_seconds": 60.0,
        "rollout_check_seconds": 0,  # tests drive the rollout controller themselves
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the app's settings."""
    # Provider calls go through httpx so respx can mock them; LiteLLM itself runs for real.
    return {"llm_transport": "httpx", "llm_num_retries": 1, "llm_timeout_seconds": 5}


@pytest.fixture(autouse=True)
def provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM reads provider keys from the environment, as in production."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000")


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    """Every outbound provider call is mocked; an unmocked one fails the test."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def app(database_url: str, settings_overrides: dict[str, Any]) -> FastAPI:
    return create_app(make_settings(database_url, **settings_overrides))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return bearer(ADMIN_KEY)


@pytest.fixture
def keys(client: TestClient, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """Headers for one key of each role, plus a second editor and approver."""
    headers: dict[str, dict[str, str]] = {"admin": admin}
    for name, role in [
        ("runtime", "runtime"),
        ("editor", "editor"),
        ("editor2", "editor"),
        ("approver", "approver"),
        ("approver2", "approver"),
    ]:
        response = client.post("/api/keys", json={"name": name, "role": role}, headers=admin)
        assert response.status_code == 201, response.text
        headers[name] = bearer(response.json()["key"])
    return headers


PROMPT = "You are {{ company }}'s support agent. Answer in a {{ tone }} tone."


def version_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "openai/gpt-4o-mini",
        "system_prompt": PROMPT,
        "variables": {
            "company": {"default": "Acme"},
            "tone": {"required": True, "description": "e.g. friendly"},
        },
        "params": {"temperature": 0.2, "max_tokens": 512},
        "message": "first",
    }
    body.update(overrides)
    return body


class Api:
    """Small steps of the contract, each asserting its own success."""

    def __init__(self, client: TestClient, keys: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.keys = keys

    def create_bundle(self, name: str = "support-bot") -> dict[str, Any]:
        response = self.client.post("/api/bundles", json={"name": name}, headers=self.keys["editor"])
        assert response.status_code == 201, response.text
        return dict(response.json())

    def publish(self, name: str = "support-bot", **overrides: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/api/bundles/{name}/versions", json=version_body(**overrides), headers=self.keys["editor"]
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def move(self, number: int, to: str, name: str = "support-bot", who: str = "editor", **extra: Any) -> Any:
        return self.client.post(
            f"/api/bundles/{name}/versions/{number}/transitions",
            json={"to": to, **extra},
            headers=self.keys[who],
        )

    def approve(self, number: int, name: str = "support-bot", who: str = "approver") -> Any:
        return self.client.post(
            f"/api/bundles/{name}/versions/{number}/approvals",
            json={"comment": "lgtm"},
            headers=self.keys[who],
        )

    def to_production(self, number: int, name: str = "support-bot") -> dict[str, Any]:
        """staging → validation → approved → production."""
        for stage in ("staging", "validation"):
            response = self.move(number, stage, name)
            assert response.status_code == 200, response.text
        assert self.approve(number, name).status_code == 201
        response = self.move(number, "production", name, who="approver2", reason="ship it")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def versions_count(self, name: str = "support-bot") -> int:
        response = self.client.get(f"/api/bundles/{name}/versions", headers=self.keys["runtime"])
        assert response.status_code == 200
        return len(response.json())


@pytest.fixture
def server_url(app: FastAPI, client: TestClient) -> Iterator[str]:
    """The test's app (already started by ``client``) also served by uvicorn on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def api(client: TestClient, keys: dict[str, dict[str, str]]) -> Api:
    return Api(client, keys)
