"""Parallel promotions and rollbacks of one bundle through a real HTTP server.

Exactly one version stays in production, the history replays to the current state, and
every request that lost the race gets a 409 — never a 500, never a lost update.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Api

THREADS = 16


def _ready_candidates(api: Api, count: int) -> None:
    """v1 in production, then ``count`` more versions approved in validation."""
    api.create_bundle()
    api.publish(params={"temperature": 0.0})
    api.to_production(1)
    for number in range(2, count + 2):
        api.publish(params={"temperature": number / 100})
        api.move(number, "staging")
        api.move(number, "validation")
        assert api.approve(number).status_code == 201


def _fire(
    server_url: str, requests: list[tuple[str, dict[str, Any]]], headers: dict[str, str]
) -> list[httpx.Response]:
    barrier = threading.Barrier(len(requests))

    def one(request: tuple[str, dict[str, Any]]) -> httpx.Response:
        path, body = request
        with httpx.Client(base_url=server_url, headers=headers, timeout=60) as http:
            barrier.wait()
            return http.post(path, json=body)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def _assert_history_replays(api: Api) -> None:
    versions = api.client.get("/api/bundles/support-bot/versions", headers=api.keys["runtime"]).json()
    stages = {v["version_id"]: "draft" for v in versions}
    history = api.client.get(
        "/api/bundles/support-bot/history?limit=1000", headers=api.keys["runtime"]
    ).json()
    for record in reversed(history):
        assert stages[record["version_id"]] == record["from_stage"], record
        stages[record["version_id"]] = record["to_stage"]
        assert list(stages.values()).count("production") <= 1
    assert stages == {v["version_id"]: v["stage"] for v in versions}
    assert [v["stage"] for v in versions].count("production") == 1


class TestParallelLifecycle:
    def test_parallel_promotions_with_expected_production_have_one_winner(
        self, api: Api, server_url: str
    ) -> None:
        _ready_candidates(api, THREADS)
        requests = [
            (
                f"/api/bundles/support-bot/versions/{n}/transitions",
                {"to": "production", "expected_production": 1},
            )
            for n in range(2, THREADS + 2)
        ]
        responses = _fire(server_url, requests, api.keys["approver2"])
        codes = Counter(r.status_code for r in responses)
        assert codes == {200: 1, 409: THREADS - 1}, codes
        assert all(
            r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 409
        )
        _assert_history_replays(api)

    def test_mixed_promotions_and_rollbacks_never_500_and_leave_one_production(
        self, api: Api, server_url: str
    ) -> None:
        _ready_candidates(api, THREADS)
        # A second production version first, so rollbacks have somewhere to go.
        assert api.move(2, "production", who="approver2").status_code == 200
        requests: list[tuple[str, dict[str, Any]]] = []
        for n in range(3, THREADS + 2):
            if n % 2:
                requests.append((f"/api/bundles/support-bot/versions/{n}/transitions", {"to": "production"}))
            else:
                requests.append(("/api/bundles/support-bot/rollback", {"reason": f"race {n}"}))
        responses = _fire(server_url, requests, api.keys["approver2"])
        codes = Counter(r.status_code for r in responses)
        assert set(codes) <= {200, 409}, [
            (r.status_code, r.text) for r in responses if r.status_code not in {200, 409}
        ]
        assert codes[200] >= 1
        _assert_history_replays(api)

    def test_parallel_rollbacks_with_expected_production_have_one_winner(
        self, api: Api, server_url: str
    ) -> None:
        _ready_candidates(api, 2)
        api.move(2, "production", who="approver2")
        api.move(3, "production", who="approver2")
        requests = [
            ("/api/bundles/support-bot/rollback", {"reason": "bad", "expected_production": 3})
        ] * THREADS
        responses = _fire(server_url, requests, api.keys["approver"])
        codes = Counter(r.status_code for r in responses)
        assert codes == {200: 1, 409: THREADS - 1}, codes
        active = api.client.get("/api/bundles/support-bot/active", headers=api.keys["runtime"]).json()
        assert active["version_id"] == "support-bot@2"
        _assert_history_replays(api)

    def test_parallel_identical_publishes_store_one_version(self, api: Api, server_url: str) -> None:
        api.create_bundle()
        body = {"model": "openai/gpt-4o-mini", "system_prompt": "Hi", "params": {"temperature": 0.3}}
        responses = _fire(
            server_url, [("/api/bundles/support-bot/versions", body)] * THREADS, api.keys["editor"]
        )
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 200: THREADS - 1}, codes
        assert {r.json()["version_id"] for r in responses} == {"support-bot@1"}


class TestBurstsLargerThanTheThreadPool:
    def test_a_hundred_parallel_writes_to_one_bundle_all_complete(self, api: Api, server_url: str) -> None:
        api.create_bundle()
        api.publish()
        requests: list[tuple[str, dict[str, Any]]] = []
        for i in range(100):
            if i % 3 == 0:
                requests.append(
                    (
                        "/api/bundles/support-bot/versions",
                        {"model": "openai/gpt-4o-mini", "system_prompt": f"Prompt {i}"},
                    )
                )
            elif i % 3 == 1:
                requests.append(
                    ("/api/bundles/support-bot/versions/1/evaluations", {"metrics": {"acc": i / 100}})
                )
            else:
                requests.append(
                    (
                        "/api/bundles/support-bot/versions/1/transitions",
                        {"to": "staging" if i % 2 else "archived"},
                    )
                )
        responses = _fire(server_url, requests, api.keys["editor"])
        codes = Counter(r.status_code for r in responses)
        assert set(codes) <= {200, 201, 409}, codes  # 409: a stage move that lost its race
        assert codes[201] >= 67, codes
        versions = api.client.get("/api/bundles/support-bot/versions", headers=api.keys["runtime"]).json()
        assert len(versions) == 1 + 34
