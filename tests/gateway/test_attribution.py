"""Every call is recorded: across a graceful stop, and when the client goes away mid-stream."""

from __future__ import annotations

import time

import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import create_db_engine, read_session
from app.events.models import ChatEvent
from app.main import create_app
from tests.conftest import ADMIN_KEY, Api, bearer, make_settings
from tests.llm import GATEWAY_PARAMS, UPSTREAM, ok, open_slow_stream


def events_in(database_url: str) -> list[ChatEvent]:
    engine = create_db_engine(database_url)
    try:
        with read_session(engine) as session:
            return list(session.exec(select(ChatEvent)).scalars())  # type: ignore[call-overload]
    finally:
        engine.dispose()


class TestGracefulStop:
    def test_queued_events_are_stored_when_the_server_stops(
        self, database_url: str, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        settings = make_settings(database_url, llm_transport="httpx", llm_num_retries=0)
        with TestClient(create_app(settings)) as client:
            api = Api(client, {"admin": bearer(ADMIN_KEY)})
            for name, role in (
                ("editor", "editor"),
                ("approver", "approver"),
                ("approver2", "approver"),
                ("runtime", "runtime"),
            ):
                api.keys[name] = bearer(
                    client.post(
                        "/api/keys", json={"name": name, "role": role}, headers=api.keys["admin"]
                    ).json()["key"]
                )
            api.create_bundle()
            api.publish(params=GATEWAY_PARAMS)
            api.to_production(1)
            ids = set()
            for _ in range(25):
                response = client.post(
                    "/v1/chat/completions",
                    json={
                        "model": "support-bot",
                        "messages": [{"role": "user", "content": "hi"}],
                        "prompt_variables": {"tone": "calm"},
                    },
                    headers=api.keys["runtime"],
                )
                ids.add(response.json()["id"])
            # No flush here: leaving the block runs the app's shutdown, which must drain the queue.
        assert {e.request_id for e in events_in(database_url)} == ids


class TestClientDisconnect:
    def test_a_stream_the_client_abandons_is_recorded_as_cancelled(
        self, live_app: tuple[Api, FastAPI], server_url: str, upstream: respx.MockRouter, database_url: str
    ) -> None:
        api, _ = live_app
        http, stream = open_slow_stream(api, server_url, upstream)
        with http, stream as response:
            request_id = response.headers["x-chatver-request-id"]
            for line in response.iter_lines():
                if line.startswith("data:"):
                    break  # read one chunk, then hang up
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [e for e in events_in(database_url) if e.request_id == request_id]
            if found:
                break
            time.sleep(0.2)
        assert found, "the abandoned stream was never recorded"
        assert found[0].status == "cancelled"
        assert found[0].error == "client_disconnected"
        assert found[0].version_id == "support-bot@1"
