"""The hot path does no database work once the answer is cached, and a write refreshes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import Api


@contextmanager
def counting_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.startswith("BEGIN"):  # transaction control on SQLite, not a query
            statements.append(statement)

    engine = app.state.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


class TestActiveHotPath:
    def test_repeated_active_fetches_run_no_sql(self, api: Api, app: FastAPI) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"])  # warm
        with counting_statements(app) as statements:
            for _ in range(50):
                response = api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"])
                assert response.status_code == 200
            for _ in range(10):
                rendered = api.client.post(
                    "/api/bundles/support-bot/render",
                    json={"variables": {"tone": "calm"}},
                    headers=api.keys["runtime"],
                )
                assert rendered.status_code == 200
        assert statements == []

    def test_unknown_bundles_are_answered_from_memory_too(self, api: Api, app: FastAPI) -> None:
        api.client.get("/api/bundles/ghost/active", headers=api.keys["runtime"])
        with counting_statements(app) as statements:
            for _ in range(20):
                assert (
                    api.client.get("/api/bundles/ghost/active", headers=api.keys["runtime"]).status_code
                    == 404
                )
        assert statements == []

    def test_a_promotion_costs_one_reload(self, api: Api, app: FastAPI) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        api.publish(params={"temperature": 1.0})
        api.move(2, "staging")
        api.move(2, "validation")
        api.approve(2)
        api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"])
        api.move(2, "production", who="approver2")
        with counting_statements(app) as statements:
            versions = {
                api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"]).json()[
                    "version_id"
                ]
                for _ in range(20)
            }
        assert versions == {"support-bot@2"}
        # One reload: the bundle, its production version, its running experiment and rollout, once.
        assert 1 <= len(statements) <= 4, statements
