"""Feedback and reported events: attribution to the serving version, validation, batch limits."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from app.events import router as events_router
from tests.conftest import Api
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, flush_events, metrics_of, ok


@pytest.fixture
def live(api: Api) -> Api:
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS)
    api.to_production(1)
    return api


def feedback(api: Api, request_id: str, name: str = "thumbs_up", value: Any = 1, **extra: Any) -> Any:
    return api.client.post(
        "/api/feedback",
        json={"request_id": request_id, "name": name, "value": value, **extra},
        headers=api.keys["runtime"],
    )


class TestFeedback:
    def test_feedback_is_attributed_to_the_serving_version_even_after_a_rollback(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        live.publish(params={**GATEWAY_PARAMS, "temperature": 0.9})
        live.to_production(2)
        served_by_v2 = chat(live).json()["id"]
        rollback = live.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "bad"}, headers=live.keys["approver"]
        )
        assert rollback.json()["to"] == "support-bot@1"
        response = feedback(live, served_by_v2, comment="great answer")
        assert response.status_code == 202, response.text
        assert response.json()["version_id"] == "support-bot@2"
        assert metrics_of(live, 2)["outcomes"] == {"thumbs_up": {"count": 1, "mean": 1.0}}
        assert metrics_of(live, 1)["outcomes"] == {}

    def test_feedback_right_after_the_call_finds_the_queued_event(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        request_id = chat(live).json()["id"]  # not flushed: still in the writer's queue
        assert feedback(live, request_id).status_code == 202

    def test_same_name_again_replaces_the_value(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        request_id = chat(live).json()["id"]
        flush_events(live)
        feedback(live, request_id, value=1)
        feedback(live, request_id, value=0)
        feedback(live, request_id, name="rating", value=4.5)
        assert metrics_of(live, 1)["outcomes"] == {
            "rating": {"count": 1, "mean": 4.5},
            "thumbs_up": {"count": 1, "mean": 0.0},
        }

    def test_unknown_request_id_is_404(self, live: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(events_router, "FEEDBACK_WAIT_SECONDS", 0.1)
        response = feedback(live, "chatcmpl-nope")
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "request_id"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"request_id": "x", "name": "thumbs up", "value": 1}, "name"),
            ({"request_id": "x", "name": "t", "value": "yes"}, "value"),
            ({"request_id": "x", "name": "t", "value": 1e300}, "value"),
            ({"request_id": "", "name": "t", "value": 1}, "request_id"),
            ({"name": "t", "value": 1}, "request_id"),
        ],
    )
    def test_bad_feedback_names_the_field(self, live: Api, body: dict[str, Any], field: str) -> None:
        response = live.client.post("/api/feedback", json=body, headers=live.keys["runtime"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


def event(**overrides: Any) -> dict[str, Any]:
    body = {
        "version_id": "support-bot@1",
        "subject": "u-1",
        "latency_ms": 812,
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "cost": 0.00021,
        "error": None,
        "outcomes": {"thumbs_up": 1},
    }
    body.update(overrides)
    return body


class TestReportedEvents:
    def test_single_event_is_stored_with_its_outcomes(self, live: Api) -> None:
        response = live.client.post("/api/events", json=event(), headers=live.keys["runtime"])
        assert response.status_code == 202, response.text
        assert response.json()["request_id"].startswith("chatcmpl-")
        metrics = metrics_of(live, 1)
        assert metrics["requests"] == 1
        assert metrics["latency_ms"]["p50"] == 812
        assert metrics["cost"]["total"] == pytest.approx(0.00021)
        assert metrics["outcomes"]["thumbs_up"] == {"count": 1, "mean": 1.0}
        follow_up = live.client.post(
            "/api/feedback",
            json={"request_id": response.json()["request_id"], "name": "resolved", "value": 1},
            headers=live.keys["runtime"],
        )
        assert follow_up.status_code == 202

    def test_compare_shows_each_versions_live_metrics_side_by_side(self, live: Api) -> None:
        live.publish(params={**GATEWAY_PARAMS, "temperature": 0.1})
        batch = [event(latency_ms=100.0 + i) for i in range(3)]
        batch.append(event(version_id="support-bot@2", latency_ms=400.0, error="timeout"))
        assert live.client.post("/api/events", json=batch, headers=live.keys["runtime"]).status_code == 202
        flush_events(live)
        compared = live.client.get("/api/bundles/support-bot/compare", headers=live.keys["runtime"]).json()
        first, second = compared["versions"]
        assert (first["version_id"], second["version_id"]) == ("support-bot@1", "support-bot@2")
        assert (first["live_metrics"]["requests"], first["live_metrics"]["errors"]) == (3, 0)
        assert first["live_metrics"]["outcomes"]["thumbs_up"] == {"count": 3, "mean": 1.0}
        assert second["live_metrics"]["error_rate"] == 1.0
        assert second["live_metrics"]["latency_ms"]["p50"] == 400
        assert first["live_metrics"] == metrics_of(live, 1)

    def test_batch_is_stored_in_one_go(self, live: Api) -> None:
        batch = [event(latency_ms=100 + i, error="timeout" if i % 4 == 0 else None) for i in range(40)]
        response = live.client.post("/api/events", json=batch, headers=live.keys["runtime"])
        assert response.status_code == 202
        assert len(set(response.json()["request_ids"])) == 40
        metrics = metrics_of(live, 1)
        assert (metrics["requests"], metrics["errors"], metrics["error_rate"]) == (40, 10, 0.25)

    def test_batch_over_1000_is_refused_and_nothing_is_stored(self, live: Api) -> None:
        response = live.client.post("/api/events", json=[event()] * 1001, headers=live.keys["runtime"])
        assert response.status_code == 413
        assert metrics_of(live, 1)["requests"] == 0

    def test_one_bad_event_refuses_the_whole_batch_naming_it(self, live: Api) -> None:
        batch = [event(), event(), event(latency_ms=-5)]
        response = live.client.post("/api/events", json=batch, headers=live.keys["runtime"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "2.latency_ms"
        assert metrics_of(live, 1)["requests"] == 0

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"version_id": "support-bot@9"}, "version_id"),
            ({"version_id": "nope@1"}, "version_id"),
            ({"version_id": "support-bot"}, "version_id"),
            ({"experiment": "exp_missing"}, "experiment"),
            ({"outcomes": {"bad name": 1}}, "outcomes"),
            ({"prompt_tokens": 1.5}, "prompt_tokens"),
            ({"colour": "blue"}, "colour"),
        ],
    )
    def test_bad_events_name_the_field(self, live: Api, overrides: dict[str, Any], field: str) -> None:
        response = live.client.post("/api/events", json=event(**overrides), headers=live.keys["runtime"])
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"].startswith(field)

    def test_empty_or_scalar_bodies_are_refused(self, live: Api) -> None:
        for body in ([], 5, "x"):
            assert live.client.post("/api/events", json=body, headers=live.keys["runtime"]).status_code == 422


class TestPrometheus:
    def test_metrics_are_labelled_by_bundle_and_version(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        for _ in range(3):
            chat(live)
        text = live.client.get("/metrics", headers=live.keys["runtime"]).text
        assert 'chatver_requests_total{bundle="support-bot",version_id="support-bot@1"} 3.0' in text
        assert 'chatver_latency_seconds_count{bundle="support-bot",version_id="support-bot@1"} 3.0' in text
        assert (
            'chatver_tokens_total{bundle="support-bot",kind="prompt",version_id="support-bot@1"} 60.0' in text
        )
        assert "chatver_cost_usd_total" in text

    def test_metrics_need_a_key(self, live: Api) -> None:
        assert live.client.get("/metrics").status_code == 401
