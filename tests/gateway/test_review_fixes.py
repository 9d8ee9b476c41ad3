"""Gateway and attribution edge cases: caps, media URLs, self-hosted providers, mid-stream feedback,
archived arms and our own failures."""

from __future__ import annotations

from typing import Any

import respx
from fastapi import FastAPI

from tests.conftest import ALLOWED_API_BASE, Api
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, ok, open_slow_stream, sent


class TestParams:
    def test_a_bundle_token_cap_covers_both_names(self, live: Api, upstream: respx.MockRouter) -> None:
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        chat(live, max_completion_tokens=50_000, max_tokens=9_999)
        body = sent(route.calls.last)
        assert body["max_tokens"] == 512 and "max_completion_tokens" not in body


class TestMedia:
    def test_remote_image_urls_are_refused_for_providers_chatver_would_fetch_for(self, api: Api) -> None:
        api.create_bundle()
        api.publish(
            model="anthropic/claude-3-5-sonnet-20240620", params={"api_base": f"{ALLOWED_API_BASE}/v1"}
        )
        api.to_production(1)
        message = {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "http://93.184.216.34/cat.png"}},
            ],
        }
        response = chat(api, messages=[message])
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "messages.0.content.1.image_url"

    def test_openai_fetches_its_own_images(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        message = {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}],
        }
        assert chat(live, messages=[message]).status_code == 200


class TestSelfHostedProviders:
    def test_a_local_provider_needs_an_allowed_api_base(self, api: Api) -> None:
        api.create_bundle()
        response = api.client.post(
            "/api/bundles/support-bot/versions",
            json={"model": "ollama/llama3", "system_prompt": "Hi"},
            headers=api.keys["editor"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "params.api_base"


class TestFeedbackDuringAStream:
    def test_feedback_for_a_stream_still_running_is_accepted(
        self, live_app: tuple[Api, FastAPI], server_url: str, upstream: respx.MockRouter
    ) -> None:
        api, _ = live_app
        http, stream = open_slow_stream(api, server_url, upstream)
        with http, stream as response:
            request_id = response.headers["x-chatver-request-id"]
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data:"))
            feedback = http.post(
                "/api/feedback",
                json={"request_id": request_id, "name": "thumbs_up", "value": 0},
                headers=api.keys["runtime"],
            )
            assert feedback.status_code == 202, feedback.text
            assert feedback.json()["version_id"] == "support-bot@1"
            list(lines)


class TestOwnFailures:
    def test_a_bug_in_chatver_is_a_500_not_a_provider_error(self, live: Api, app: FastAPI) -> None:
        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("bug")

        app.state.gateway._llm.complete = broken
        response = chat(live)
        assert response.status_code == 500


class TestArmsInUse:
    def test_an_arm_of_a_running_experiment_cannot_be_archived(self, live: Api) -> None:
        live.publish(params={**GATEWAY_PARAMS, "temperature": 0.8})
        live.move(2, "staging")
        experiment = live.client.post(
            "/api/bundles/support-bot/experiments",
            json={
                "name": "x",
                "arms": [{"name": "a", "version": 1, "weight": 1}, {"name": "b", "version": 2, "weight": 1}],
            },
            headers=live.keys["editor"],
        ).json()
        live.client.post(f"/api/experiments/{experiment['id']}/start", headers=live.keys["editor"])
        response = live.move(2, "archived")
        assert response.status_code == 409 and response.json()["type"] == "version-in-use"


class TestReportedVersionNumbers:
    def test_a_version_number_beyond_the_range_is_422(self, live: Api) -> None:
        response = live.client.post(
            "/api/events", json={"version_id": "support-bot@9999999999"}, headers=live.keys["runtime"]
        )
        assert response.status_code == 422
