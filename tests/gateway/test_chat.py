"""The OpenAI-compatible gateway: selection, prompt rendering, params, responses, attribution."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import openai
import pytest
import respx

from tests.conftest import Api
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, completion, flush_events, metrics_of, ok, sent, sse


class TestNonStreaming:
    def test_response_is_openai_shaped_with_chatver_ids(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        response = chat(live)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == "Hello from the model"
        assert body["model"] == "support-bot@1"
        assert body["id"] == response.headers["x-chatver-request-id"]
        assert body["id"].startswith("chatcmpl-")
        assert response.headers["x-chatver-version-id"] == "support-bot@1"
        assert "x-chatver-experiment" not in response.headers

    def test_rendered_system_prompt_comes_first_and_client_messages_follow(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        messages = [
            {"role": "system", "content": "client system"},
            {"role": "user", "content": "Where is my order?"},
        ]
        chat(live, messages=messages, prompt_variables={"tone": "warm", "company": "Globex"})
        upstream_body = sent(route.calls.last)
        assert upstream_body["messages"] == [
            {"role": "system", "content": "You are Globex's support agent. Answer in a warm tone."},
            *messages,
        ]
        assert upstream_body["model"] == "gpt-4o-mini"

    def test_bundle_params_win_and_other_client_params_pass_through(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        chat(live, temperature=1.5, top_p=0.5, seed=7, user="u-1")
        upstream_body = sent(route.calls.last)
        assert upstream_body["temperature"] == 0.2
        assert upstream_body["max_tokens"] == 512
        assert upstream_body["top_p"] == 0.5 and upstream_body["seed"] == 7 and upstream_body["user"] == "u-1"
        assert "api_base" not in upstream_body and "prompt_variables" not in upstream_body

    def test_call_is_attributed_with_tokens_cost_and_latency(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok(completion(prompt_tokens=1000, completion_tokens=500)))
        assert chat(live).status_code == 200
        metrics = metrics_of(live, 1)
        assert metrics["requests"] == 1 and metrics["errors"] == 0
        assert metrics["tokens"] == {"prompt": 1000, "completion": 500}
        # gpt-4o-mini: $0.15 / 1M prompt tokens, $0.60 / 1M completion tokens (LiteLLM's price map)
        assert metrics["cost"]["total"] == pytest.approx(1000 * 0.15e-6 + 500 * 0.6e-6)
        assert metrics["latency_ms"]["p50"] > 0

    def test_the_official_openai_client_works_against_the_gateway(
        self, live: Api, upstream: respx.MockRouter, server_url: str
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.route(host="127.0.0.1", port=int(server_url.rsplit(":", 1)[1])).pass_through()
        client = openai.OpenAI(
            base_url=f"{server_url}/v1",
            api_key=live.keys["runtime"]["Authorization"].removeprefix("Bearer "),
            max_retries=0,
        )
        completion_ = client.chat.completions.create(
            model="support-bot",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"prompt_variables": {"tone": "calm"}},
            extra_headers={"x-chatver-subject": "u-42"},
        )
        assert completion_.model == "support-bot@1"
        assert completion_.choices[0].message.content == "Hello from the model"
        upstream.post(UPSTREAM).mock(
            return_value=httpx.Response(200, text=sse(), headers={"content-type": "text/event-stream"})
        )
        stream = client.chat.completions.create(
            model="support-bot",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"prompt_variables": {"tone": "calm"}},
            stream=True,
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "Hello!"
        models = client.models.list()
        assert [m.id for m in models.data] == ["support-bot"]


class TestStreaming:
    def test_stream_relays_chunks_and_ends_with_done(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(
            return_value=httpx.Response(200, text=sse(), headers={"content-type": "text/event-stream"})
        )
        response = chat(live, stream=True)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert {c["model"] for c in chunks} == {"support-bot@1"}
        assert {c["id"] for c in chunks} == {response.headers["x-chatver-request-id"]}
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello!"
        assert all("usage" not in c or c["usage"] is None for c in chunks)

    def test_stream_usage_is_relayed_when_asked_and_always_recorded(
        self, live: Api, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(
            return_value=httpx.Response(200, text=sse(), headers={"content-type": "text/event-stream"})
        )
        response = chat(live, stream=True, stream_options={"include_usage": True})
        chunks = [
            json.loads(e.removeprefix("data: ")) for e in response.text.split("\n\n") if e and "DONE" not in e
        ]
        assert chunks[-1]["usage"]["total_tokens"] == 14
        chat(live, stream=True)
        metrics = metrics_of(live, 1)
        assert metrics["requests"] == 2
        assert metrics["tokens"] == {"prompt": 22, "completion": 6}
        assert metrics["ttft_ms"]["p50"] is not None


class TestSelectors:
    @pytest.fixture
    def three(self, live: Api) -> Api:
        live.publish(params={**GATEWAY_PARAMS, "temperature": 0.5}, semver="2.0.0")
        live.move(2, "staging")
        return live

    @pytest.mark.parametrize(
        ("model", "version"),
        [
            ("support-bot", "support-bot@1"),
            ("support-bot@2", "support-bot@2"),
            ("support-bot@2.0.0", "support-bot@2"),
            ("support-bot@v2.0.0", "support-bot@2"),
            ("support-bot:staging", "support-bot@2"),
            ("support-bot:production", "support-bot@1"),
        ],
    )
    def test_model_selects_the_version(
        self, three: Api, upstream: respx.MockRouter, model: str, version: str
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        response = chat(three, model=model)
        assert response.status_code == 200, response.text
        assert response.json()["model"] == version

    @pytest.mark.parametrize(
        ("model", "status"),
        [
            ("nope", 404),
            ("support-bot@9", 404),
            ("support-bot:validation", 404),
            ("support-bot:heaven", 422),
            ("Support Bot", 422),
            ("support-bot@x.y", 422),
        ],
    )
    def test_bad_selectors_are_openai_errors(self, three: Api, model: str, status: int) -> None:
        response = chat(three, model=model)
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code", "param"}

    def test_archived_versions_do_not_serve(self, three: Api) -> None:
        three.move(2, "archived")
        response = chat(three, model="support-bot@2")
        assert response.status_code == 422
        assert "archived" in response.json()["error"]["message"]


class TestBadRequests:
    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"messages": []}, "messages"),
            ({"messages": "hi"}, "messages"),
            ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
            ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
            ({"prompt_variables": {"tone": "x", "mood": "y"}}, "prompt_variables.mood"),
            ({"prompt_variables": {}}, "prompt_variables.tone"),
            ({"api_base": "http://evil.example"}, "api_base"),
            ({"api_key": "sk-x"}, "api_key"),
            ({"stream": "yes"}, "stream"),
            ({"n": 100}, "n"),
        ],
    )
    def test_bad_request_names_the_param(
        self, live: Api, upstream: respx.MockRouter, body: dict, param: str
    ) -> None:
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        response = chat(live, **body)
        assert response.status_code in {400, 422}, response.text
        assert response.json()["error"]["param"] == param
        assert not route.called

    def test_missing_key_is_401_in_openai_shape(self, live: Api) -> None:
        response = live.client.post("/v1/chat/completions", json={"model": "support-bot", "messages": []})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


class TestUpstreamFailures:
    @pytest.mark.parametrize(
        ("upstream_status", "expected"), [(500, 502), (429, 502), (503, 502), (401, 502), (400, 400)]
    )
    def test_upstream_errors_map_and_count_against_the_version(
        self, live: Api, upstream: respx.MockRouter, upstream_status: int, expected: int
    ) -> None:
        upstream.post(UPSTREAM).mock(
            return_value=httpx.Response(upstream_status, json={"error": {"message": "boom", "type": "x"}})
        )
        response = chat(live)
        assert response.status_code == expected
        assert response.json()["error"]["message"]
        assert response.headers["x-chatver-version-id"] == "support-bot@1"
        metrics = metrics_of(live, 1)
        assert (metrics["requests"], metrics["errors"], metrics["error_rate"]) == (1, 1, 1.0)

    def test_upstream_timeout_is_504(self, live: Api, upstream: respx.MockRouter) -> None:
        route = upstream.post(UPSTREAM).mock(side_effect=httpx.ReadTimeout("slow"))
        response = chat(live)
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "timeout"
        assert route.call_count == 2  # one retry of a timeout (llm_num_retries=1)
        assert metrics_of(live, 1)["errors"] == 1

    def test_retries_then_succeeds(self, live: Api, upstream: respx.MockRouter) -> None:
        route = upstream.post(UPSTREAM).mock(
            side_effect=[httpx.Response(500, json={"error": {"message": "flaky"}}), ok()]
        )
        assert chat(live).status_code == 200
        assert route.call_count == 2
        assert metrics_of(live, 1)["errors"] == 0


class TestModels:
    def test_models_lists_bundles(self, live: Api) -> None:
        live.create_bundle("sales-bot")
        response = live.client.get("/v1/models", headers=live.keys["runtime"])
        body = response.json()
        assert body["object"] == "list"
        assert [m["id"] for m in body["data"]] == ["sales-bot", "support-bot"]
        assert all(m["owned_by"] == "chatver" and isinstance(m["created"], int) for m in body["data"])


class TestOutboundSafety:
    def test_a_version_whose_api_base_is_no_longer_allowed_is_not_called(
        self, live: Api, upstream: respx.MockRouter, app: Any
    ) -> None:
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        app.state.settings.__dict__["allowed_api_base_set"] = frozenset()  # the operator narrowed the list
        response = chat(live)
        assert response.status_code == 502
        assert "no longer allowed" in response.json()["error"]["message"]
        assert not route.called

    def test_provider_keys_never_reach_logs_or_responses(
        self, live: Api, upstream: respx.MockRouter, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        upstream.post(UPSTREAM).mock(return_value=httpx.Response(401, json={"error": {"message": "bad key"}}))
        response = chat(live)
        assert response.status_code == 502
        secret = "sk-test-not-a-real-key-0000"
        assert secret not in response.text
        assert secret not in caplog.text
        sent_headers = upstream.calls.last.request.headers
        assert sent_headers["authorization"] == f"Bearer {secret}"  # from the server's environment


class TestCheckpoints:
    def test_a_fine_tuned_checkpoint_is_the_model_called(self, api: Api, upstream: respx.MockRouter) -> None:
        api.create_bundle()
        api.publish(
            params=GATEWAY_PARAMS,
            checkpoint={"ref": "ft:gpt-4o-mini-2024-07-18:acme::9xYz", "base_model": "openai/gpt-4o-mini"},
        )
        api.to_production(1)
        route = upstream.post(UPSTREAM).mock(return_value=ok())
        assert chat(api).status_code == 200
        assert sent(route.calls.last)["model"] == "ft:gpt-4o-mini-2024-07-18:acme::9xYz"


class TestMetricsWindow:
    def test_since_limits_the_metrics_to_recent_events(self, live: Api, upstream: respx.MockRouter) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        chat(live)
        flush_events(live)
        everything = live.client.get(
            "/api/bundles/support-bot/versions/1/metrics?since=2000-01-01T00:00:00Z",
            headers=live.keys["runtime"],
        ).json()
        future = live.client.get(
            "/api/bundles/support-bot/versions/1/metrics?since=2999-01-01T00:00:00Z",
            headers=live.keys["runtime"],
        ).json()
        assert (everything["requests"], future["requests"]) == (1, 0)
        assert everything["since"] == "2000-01-01T00:00:00Z"
