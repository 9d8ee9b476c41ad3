"""Runtime fetch: the active bundle with ETag/304, and prompt rendering."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.fixture
def live(api: Api) -> Api:
    api.create_bundle()
    api.publish()
    api.to_production(1)
    return api


class TestActive:
    def test_active_returns_the_production_version(self, live: Api) -> None:
        response = live.client.get("/api/bundles/support-bot/active", headers=live.keys["runtime"])
        assert response.status_code == 200
        body = response.json()
        assert body["version_id"] == "support-bot@1" and body["stage"] == "production"
        assert body["model"] == "openai/gpt-4o-mini"
        assert body["variables"]["tone"]["required"] is True
        assert body["experiment"] is None and body["checkpoint"] is None
        assert response.headers["etag"] == f'"{body["digest"]}"'
        assert response.headers["cache-control"] == "no-cache"

    def test_matching_if_none_match_is_304_without_a_body(self, live: Api) -> None:
        first = live.client.get("/api/bundles/support-bot/active", headers=live.keys["runtime"])
        again = live.client.get(
            "/api/bundles/support-bot/active",
            headers={**live.keys["runtime"], "If-None-Match": first.headers["etag"]},
        )
        assert again.status_code == 304
        assert again.content == b""

    def test_promotion_is_visible_at_once_and_changes_the_etag(self, live: Api) -> None:
        first = live.client.get("/api/bundles/support-bot/active", headers=live.keys["runtime"])
        live.publish(params={"temperature": 0.9})
        live.to_production(2)
        after = live.client.get(
            "/api/bundles/support-bot/active",
            headers={**live.keys["runtime"], "If-None-Match": first.headers["etag"]},
        )
        assert after.status_code == 200
        assert after.json()["version_id"] == "support-bot@2"
        live.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "x"}, headers=live.keys["approver"]
        )
        rolled = live.client.get("/api/bundles/support-bot/active", headers=live.keys["runtime"])
        assert rolled.json()["version_id"] == "support-bot@1"
        assert rolled.headers["etag"] == first.headers["etag"]

    def test_stage_parameter_serves_the_newest_version_in_that_stage(self, live: Api) -> None:
        live.publish(params={"temperature": 0.9})
        live.move(2, "staging")
        response = live.client.get(
            "/api/bundles/support-bot/active?stage=staging", headers=live.keys["runtime"]
        )
        assert response.json()["version_id"] == "support-bot@2"

    def test_unknown_bundle_and_empty_stage_are_404_problems(self, live: Api) -> None:
        unknown = live.client.get("/api/bundles/nope/active", headers=live.keys["runtime"])
        assert unknown.status_code == 404 and unknown.json()["type"] == "unknown-bundle"
        empty = live.client.get(
            "/api/bundles/support-bot/active?stage=validation", headers=live.keys["runtime"]
        )
        assert empty.status_code == 404 and empty.json()["type"] == "no-active-version"

    def test_bundle_created_after_a_404_is_found(self, api: Api) -> None:
        assert api.client.get("/api/bundles/late/active", headers=api.keys["runtime"]).status_code == 404
        api.create_bundle("late")
        assert api.client.get("/api/bundles/late/active", headers=api.keys["runtime"]).json()["type"] == (
            "no-active-version"
        )


class TestRender:
    def test_render_fills_defaults_and_given_variables(self, live: Api) -> None:
        response = live.client.post(
            "/api/bundles/support-bot/render",
            json={"variables": {"tone": "warm"}},
            headers=live.keys["runtime"],
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["system_prompt"] == "You are Acme's support agent. Answer in a warm tone."
        assert body["messages"] == [{"role": "system", "content": body["system_prompt"]}]
        assert body["version_id"] == "support-bot@1"

    def test_missing_required_variable_is_422_naming_it(self, live: Api) -> None:
        response = live.client.post("/api/bundles/support-bot/render", json={}, headers=live.keys["runtime"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "variables.tone"

    def test_undeclared_variable_is_422_naming_it(self, live: Api) -> None:
        response = live.client.post(
            "/api/bundles/support-bot/render",
            json={"variables": {"tone": "warm", "secret_sauce": 1}},
            headers=live.keys["runtime"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "variables.secret_sauce"

    def test_render_of_a_given_version(self, live: Api) -> None:
        live.publish(system_prompt="Hello {{ name }}", variables={"name": {"default": "you"}})
        response = live.client.post(
            "/api/bundles/support-bot/render", json={"version": 2}, headers=live.keys["runtime"]
        )
        assert response.json()["system_prompt"] == "Hello you"


class TestCacheFollowsWrites:
    def test_a_staging_move_is_visible_even_after_a_cached_404(self, api: Api) -> None:
        api.create_bundle()
        api.publish()
        assert (
            api.client.get(
                "/api/bundles/support-bot/active?stage=staging", headers=api.keys["runtime"]
            ).status_code
            == 404
        )
        api.move(1, "staging")
        response = api.client.get(
            "/api/bundles/support-bot/active?stage=staging", headers=api.keys["runtime"]
        )
        assert response.json()["version_id"] == "support-bot@1"

    def test_a_new_version_is_renderable_after_a_cached_404(self, api: Api) -> None:
        api.create_bundle()
        api.publish()
        missing = api.client.post(
            "/api/bundles/support-bot/render", json={"version": 2}, headers=api.keys["runtime"]
        )
        assert missing.status_code == 404
        api.publish(system_prompt="Hello", variables={})
        found = api.client.post(
            "/api/bundles/support-bot/render", json={"version": 2}, headers=api.keys["runtime"]
        )
        assert found.json()["system_prompt"] == "Hello"
