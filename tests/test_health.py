"""Health endpoints, request ids and error shapes common to every route."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings


class TestHealth:
    def test_healthz_and_readyz_need_no_key(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok" and ready.json()["redis"] == "disabled"

    def test_readyz_is_503_when_the_database_is_gone(self, tmp_path: object) -> None:
        app = create_app(make_settings("sqlite:////nonexistent-dir/chatver.db"))
        app.router.lifespan_context = _no_lifespan(app)
        with TestClient(app) as client:
            response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"


def _no_lifespan(app: object):  # type: ignore[no-untyped-def]
    """Start without bootstrap (which needs the database) but with an engine."""
    from contextlib import asynccontextmanager

    from app.db import create_db_engine

    @asynccontextmanager
    async def lifespan(application):  # type: ignore[no-untyped-def]
        application.state.engine = create_db_engine(application.state.settings.database_url)
        yield

    return lifespan


class TestRequestIds:
    def test_every_response_carries_a_request_id(self, client: TestClient) -> None:
        assert client.get("/healthz").headers["x-request-id"].startswith("req_")
        assert client.get("/api/bundles").headers["x-request-id"].startswith("req_")

    def test_a_sane_client_request_id_is_echoed(self, client: TestClient) -> None:
        response = client.get("/api/bundles", headers={"x-request-id": "trace-123"})
        assert response.headers["x-request-id"] == "trace-123"
        assert response.json()["request_id"] == "trace-123"

    def test_an_insane_client_request_id_is_replaced(self, client: TestClient) -> None:
        response = client.get("/healthz", headers={"x-request-id": "x" * 500})
        assert response.headers["x-request-id"].startswith("req_")


class TestUnknownRoutes:
    def test_unknown_api_route_is_a_404_problem(self, client: TestClient) -> None:
        response = client.get("/api/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_wrong_method_is_405_problem(self, client: TestClient, admin: dict[str, str]) -> None:
        response = client.put("/api/keys", headers=admin)
        assert response.status_code == 405
        assert response.json()["status"] == 405


class TestServerErrors:
    def test_an_unexpected_error_is_a_500_problem_with_the_request_id(
        self, app: object, client: TestClient
    ) -> None:
        from app.errors import ChatverError  # noqa: F401

        @app.get("/api/boom")  # type: ignore[attr-defined]
        def boom() -> None:
            raise RuntimeError("kaboom")

        response = client.get("/api/boom", headers={"x-request-id": "trace-500"})
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "trace-500"
        assert response.json()["request_id"] == "trace-500"
        assert "kaboom" not in response.text
        assert response.headers["content-type"] == "application/problem+json"
