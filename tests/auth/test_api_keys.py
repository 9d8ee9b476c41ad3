"""API keys: issued once, stored hashed, roles enforced on every route, revocation at once."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import create_db_engine
from app.main import create_app
from tests.conftest import ADMIN_KEY, bearer, make_settings

OPEN_ROUTES = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


class TestKeys:
    def test_secret_is_shown_once_and_stored_only_as_a_hash(
        self, client: TestClient, admin: dict[str, str], database_url: str
    ) -> None:
        created = client.post("/api/keys", json={"name": "ci", "role": "editor"}, headers=admin)
        assert created.status_code == 201
        body = created.json()
        assert set(body) >= {"id", "name", "role", "key", "created_at"}
        listed = client.get("/api/keys", headers=admin).json()
        assert all("key" not in k for k in listed)
        engine = create_db_engine(database_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT key_hash FROM api_key WHERE name = 'ci'")).all()
            everything = " ".join(str(r) for r in conn.execute(text("SELECT * FROM api_key")).all())
        engine.dispose()
        assert rows[0][0] == hashlib.sha256(body["key"].encode()).hexdigest()
        assert body["key"] not in everything

    def test_revoked_key_is_refused_on_its_next_request(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        created = client.post("/api/keys", json={"name": "bot", "role": "runtime"}, headers=admin).json()
        assert client.get("/api/bundles", headers=bearer(created["key"])).status_code == 200
        assert client.delete(f"/api/keys/{created['id']}", headers=admin).status_code == 200
        refused = client.get("/api/bundles", headers=bearer(created["key"]))
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"

    def test_duplicate_key_names_are_409(self, client: TestClient, admin: dict[str, str]) -> None:
        assert (
            client.post("/api/keys", json={"name": "ci", "role": "editor"}, headers=admin).status_code == 201
        )
        assert (
            client.post("/api/keys", json={"name": "ci", "role": "admin"}, headers=admin).status_code == 409
        )

    def test_unknown_role_is_422_naming_the_field(self, client: TestClient, admin: dict[str, str]) -> None:
        response = client.post("/api/keys", json={"name": "ci", "role": "root"}, headers=admin)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "role"

    def test_only_admins_manage_keys(self, client: TestClient, keys: dict[str, dict[str, str]]) -> None:
        for role in ("runtime", "editor", "approver"):
            assert client.get("/api/keys", headers=keys[role]).status_code == 403
            assert (
                client.post(
                    "/api/keys", json={"name": f"x{role}", "role": "admin"}, headers=keys[role]
                ).status_code
                == 403
            )

    def test_missing_malformed_and_unknown_keys_are_401(self, client: TestClient) -> None:
        assert client.get("/api/bundles").status_code == 401
        assert client.get("/api/bundles", headers={"Authorization": "Basic abc"}).status_code == 401
        assert client.get("/api/bundles", headers=bearer("cv_not_a_key")).status_code == 401

    def test_revoking_an_unknown_key_is_404(self, client: TestClient, admin: dict[str, str]) -> None:
        assert client.delete("/api/keys/key_0000000000000000", headers=admin).status_code == 404
        assert client.delete("/api/keys/key_nope", headers=admin).status_code == 422


class TestBootstrap:
    def test_without_any_key_the_server_generates_and_prints_one(
        self, database_url: str, capsys: object
    ) -> None:
        app = create_app(make_settings(database_url, admin_key=None))
        with TestClient(app) as client:
            out = capsys.readouterr().out  # type: ignore[attr-defined]
            secret = out.split("(shown once): ")[1].split()[0]
            assert client.get("/api/keys", headers=bearer(secret)).status_code == 200
        with TestClient(create_app(make_settings(database_url, admin_key=None))):
            assert "shown once" not in capsys.readouterr().out  # type: ignore[attr-defined]

    def test_admin_key_setting_seeds_an_admin(self, client: TestClient) -> None:
        keys = client.get("/api/keys", headers=bearer(ADMIN_KEY)).json()
        assert [(k["name"], k["role"]) for k in keys] == [("admin", "admin")]


class TestEveryRouteIsGuarded:
    def test_every_api_and_v1_route_requires_a_key(self, app: FastAPI, client: TestClient) -> None:
        checked = 0
        for path, operations in app.openapi()["paths"].items():
            if path in OPEN_ROUTES or not path.startswith(("/api", "/v1")):
                continue
            for method in operations:
                url = (
                    path.replace("{name}", "support-bot")
                    .replace("{number}", "1")
                    .replace("{key_id}", "key_0000000000000000")
                    .replace("{experiment_id}", "exp_0000000000000000")
                )
                response = client.request(method, url, json={})
                assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
                checked += 1
        assert checked >= 15


class TestLastAdmin:
    def test_the_last_active_admin_key_cannot_be_revoked(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        own = client.get("/api/keys", headers=admin).json()[0]
        refused = client.delete(f"/api/keys/{own['id']}", headers=admin)
        assert refused.status_code == 409
        assert refused.json()["type"] == "last-admin-key"
        second = client.post("/api/keys", json={"name": "ops", "role": "admin"}, headers=admin).json()
        assert client.delete(f"/api/keys/{own['id']}", headers=admin).status_code == 200
        assert client.get("/api/keys", headers=admin).status_code == 401
        assert client.get("/api/keys", headers=bearer(second["key"])).status_code == 200
