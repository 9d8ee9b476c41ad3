"""Publishing versions: digests, dedupe, semver, lineage, evaluations, diff and compare."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.bundles.digest import config_digest
from tests.conftest import PROMPT, Api, version_body


class TestBundles:
    def test_created_bundle_is_listed_with_no_production_and_one_required_approval(self, api: Api) -> None:
        api.create_bundle()
        listed = api.client.get("/api/bundles", headers=api.keys["runtime"]).json()
        assert [b["name"] for b in listed] == ["support-bot"]
        bundle = api.client.get("/api/bundles/support-bot", headers=api.keys["runtime"]).json()
        assert bundle["production"] is None and bundle["experiment"] is None
        assert bundle["required_approvals"] == 1

    def test_creating_an_existing_bundle_is_409(self, api: Api) -> None:
        api.create_bundle()
        response = api.client.post("/api/bundles", json={"name": "support-bot"}, headers=api.keys["editor"])
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"

    def test_approver_patches_description_and_required_approvals(self, api: Api) -> None:
        api.create_bundle()
        response = api.client.patch(
            "/api/bundles/support-bot",
            json={"description": "FAQ bot", "required_approvals": 2},
            headers=api.keys["approver"],
        )
        assert response.status_code == 200, response.text
        assert response.json()["required_approvals"] == 2
        assert response.json()["description"] == "FAQ bot"

    def test_editor_cannot_patch_the_approval_count(self, api: Api) -> None:
        api.create_bundle()
        response = api.client.patch(
            "/api/bundles/support-bot", json={"required_approvals": 0}, headers=api.keys["editor"]
        )
        assert response.status_code == 403

    def test_unknown_bundle_is_404_problem(self, api: Api) -> None:
        response = api.client.get("/api/bundles/nope", headers=api.keys["runtime"])
        assert response.status_code == 404
        assert response.json()["status"] == 404


class TestPublish:
    def test_publish_returns_the_version_with_number_digest_stage_and_author(self, api: Api) -> None:
        api.create_bundle()
        version = api.publish(
            semver="v1.3.0",
            lineage={"code_commit": "9f2c1e7", "data_version": "v12"},
            metrics={"eval/accuracy": 0.91},
            checkpoint={"ref": "ft:gpt-4o-mini-2024-07-18:acme::9xYz", "base_model": "openai/gpt-4o-mini"},
        )
        assert version["number"] == 1
        assert version["version_id"] == "support-bot@1"
        assert version["stage"] == "draft"
        assert version["author"] == "editor"
        assert version["semver"] == "1.3.0"
        assert version["lineage"]["code_commit"] == "9f2c1e7"
        assert version["metrics"] == {"eval/accuracy": 0.91}
        assert version["digest"].startswith("sha256:") and len(version["digest"]) == 71
        assert version["created_at"].endswith("Z")

    def test_digest_is_sha256_of_the_canonical_config_only(self, api: Api) -> None:
        api.create_bundle()
        version = api.publish(message="metadata is not hashed")
        expected = config_digest(
            {
                "model": "openai/gpt-4o-mini",
                "system_prompt": PROMPT,
                "variables": {
                    "company": {"default": "Acme"},
                    "tone": {"required": True, "description": "e.g. friendly"},
                },
                "checkpoint": None,
                "params": {"temperature": 0.2, "max_tokens": 512},
            }
        )
        assert version["digest"] == expected

    def test_publishing_the_same_config_again_returns_the_existing_version_with_200(self, api: Api) -> None:
        api.create_bundle()
        first = api.publish()
        same_config = {
            "model": first["model"],
            "system_prompt": first["system_prompt"],
            "variables": first["variables"],
            "params": {"max_tokens": 512, "temperature": 0.2},
            "message": "another message",
            "semver": "9.9.9",
        }
        again = api.client.post(
            "/api/bundles/support-bot/versions", json=same_config, headers=api.keys["editor2"]
        )
        assert again.status_code == 200
        assert again.json()["number"] == 1
        assert again.json()["message"] == "first"
        assert again.json()["semver"] is None
        assert api.versions_count() == 1

    def test_integer_and_float_temperature_are_the_same_config(self, api: Api) -> None:
        api.create_bundle()
        first = api.publish(params={"temperature": 1})
        response = api.client.post(
            "/api/bundles/support-bot/versions",
            json={
                **{k: first[k] for k in ("model", "system_prompt", "variables")},
                "params": {"temperature": 1.0},
            },
            headers=api.keys["editor"],
        )
        assert response.status_code == 200

    def test_numbers_increase_and_are_never_reused(self, api: Api) -> None:
        api.create_bundle()
        numbers = [api.publish(params={"temperature": t / 10})["number"] for t in range(3)]
        assert numbers == [1, 2, 3]

    def test_semver_must_be_unique_per_bundle(self, api: Api) -> None:
        api.create_bundle()
        api.publish(semver="1.0.0")
        response = api.client.post(
            "/api/bundles/support-bot/versions",
            json={"model": "openai/gpt-4o", "system_prompt": "Hi", "semver": "v1.0.0"},
            headers=api.keys["editor"],
        )
        assert response.status_code == 409
        assert "1.0.0" in response.json()["detail"]
        assert api.versions_count() == 1

    def test_version_is_found_by_number_and_by_semver(self, api: Api) -> None:
        api.create_bundle()
        api.publish(semver="1.3.0")
        by_number = api.client.get("/api/bundles/support-bot/versions/1", headers=api.keys["runtime"])
        by_semver = api.client.get("/api/bundles/support-bot/versions/@v1.3.0", headers=api.keys["runtime"])
        assert by_number.status_code == by_semver.status_code == 200
        assert by_number.json() == by_semver.json()
        missing = api.client.get("/api/bundles/support-bot/versions/@2.0.0", headers=api.keys["runtime"])
        assert missing.status_code == 404

    def test_parent_must_be_an_existing_version(self, api: Api) -> None:
        api.create_bundle()
        response = api.client.post(
            "/api/bundles/support-bot/versions",
            json={"model": "openai/gpt-4o", "system_prompt": "Hi", "parent": 7},
            headers=api.keys["editor"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "parent"
        api.publish()
        child = api.publish(system_prompt="Hello", variables={}, parent=1)
        assert child["parent"] == 1

    def test_versions_are_listed_newest_first_and_filtered_by_stage(self, api: Api) -> None:
        api.create_bundle()
        api.publish()
        api.publish(system_prompt="Hi", variables={})
        api.move(2, "staging")
        all_versions = api.client.get("/api/bundles/support-bot/versions", headers=api.keys["runtime"]).json()
        assert [v["number"] for v in all_versions] == [2, 1]
        staged = api.client.get(
            "/api/bundles/support-bot/versions?stage=staging", headers=api.keys["runtime"]
        ).json()
        assert [v["number"] for v in staged] == [2]
        bad = api.client.get("/api/bundles/support-bot/versions?stage=nowhere", headers=api.keys["runtime"])
        assert bad.status_code == 422


class TestEvaluations:
    def test_evaluations_are_appended_and_compare_shows_the_latest_value(self, api: Api) -> None:
        api.create_bundle()
        api.publish(metrics={"eval/accuracy": 0.91, "eval/refusal_rate": 0.02})
        for accuracy in (0.92, 0.93):
            response = api.client.post(
                "/api/bundles/support-bot/versions/1/evaluations",
                json={"metrics": {"eval/accuracy": accuracy}, "dataset": "golden-v3"},
                headers=api.keys["editor"],
            )
            assert response.status_code == 201
        version = api.client.get("/api/bundles/support-bot/versions/1", headers=api.keys["runtime"]).json()
        assert [e["metrics"]["eval/accuracy"] for e in version["evaluations"]] == [0.92, 0.93]
        compared = api.client.get(
            "/api/bundles/support-bot/compare?versions=1", headers=api.keys["runtime"]
        ).json()
        assert compared["versions"][0]["eval_metrics"] == {"eval/accuracy": 0.93, "eval/refusal_rate": 0.02}


class TestDiffAndCompare:
    def test_diff_lists_field_changes_and_a_unified_prompt_diff(self, api: Api) -> None:
        api.create_bundle()
        api.publish(model="openai/gpt-4o", params={"temperature": 0.7})
        api.publish(
            system_prompt="You are {{ company }}'s agent.\nBe brief.",
            variables={"company": {"default": "Acme"}},
            params={"temperature": 0.2},
        )
        diff = api.client.get("/api/bundles/support-bot/diff?from=1&to=2", headers=api.keys["runtime"]).json()
        assert diff["from"] == "support-bot@1" and diff["to"] == "support-bot@2"
        changes = {c["field"]: (c["from"], c["to"]) for c in diff["changes"]}
        assert changes["params.temperature"] == (0.7, 0.2)
        assert changes["model"] == ("openai/gpt-4o", "openai/gpt-4o-mini")
        assert changes["variables.tone.required"] == (True, None)
        assert diff["system_prompt_diff"].startswith("--- support-bot@1\n+++ support-bot@2\n@@")
        lines = diff["system_prompt_diff"].splitlines()
        assert "-You are {{ company }}'s support agent. Answer in a {{ tone }} tone." in lines
        assert "+You are {{ company }}'s agent." in lines
        assert "+Be brief." in lines

    def test_compare_defaults_to_production_and_newest(self, api: Api) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        api.publish(params={"temperature": 0.9})
        compared = api.client.get("/api/bundles/support-bot/compare", headers=api.keys["runtime"]).json()
        assert [v["version_id"] for v in compared["versions"]] == ["support-bot@1", "support-bot@2"]
        assert compared["versions"][1]["config"]["params"]["temperature"] == 0.9

    def test_compare_with_a_malformed_list_names_the_field(self, client: TestClient, api: Api) -> None:
        api.create_bundle()
        response = client.get("/api/bundles/support-bot/compare?versions=1,x", headers=api.keys["runtime"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "versions"


class TestDiffEdgeCases:
    def test_adding_a_variable_without_settings_is_a_change(self, api: Api) -> None:
        api.create_bundle()
        api.publish(system_prompt="Hi", variables={})
        api.publish(system_prompt="Hi", variables={"x": {}})
        api.publish(system_prompt="Hi", variables={"x": {"default": None}})
        first = api.client.get(
            "/api/bundles/support-bot/diff?from=1&to=2", headers=api.keys["runtime"]
        ).json()
        assert [c["field"] for c in first["changes"]] == ["variables.x"]
        second = api.client.get(
            "/api/bundles/support-bot/diff?from=2&to=3", headers=api.keys["runtime"]
        ).json()
        assert [c["field"] for c in second["changes"]] == ["variables.x.default"]

    def test_adding_a_checkpoint_lists_its_fields(self, api: Api) -> None:
        api.create_bundle()
        api.publish()
        api.publish(checkpoint={"ref": "ft:gpt-4o-mini:acme::1"})
        diff = api.client.get("/api/bundles/support-bot/diff?from=1&to=2", headers=api.keys["runtime"]).json()
        assert diff["changes"] == [{"field": "checkpoint.ref", "from": None, "to": "ft:gpt-4o-mini:acme::1"}]


class TestCheckBeforePublishing:
    def test_check_gives_the_digest_publishing_would_and_writes_nothing(self, api: Api) -> None:
        checked = api.client.post(
            "/api/bundles/not-yet/versions/check", json=version_body(), headers=api.keys["editor"]
        )
        assert checked.status_code == 200, checked.text
        assert api.client.get("/api/bundles", headers=api.keys["runtime"]).json() == []
        api.create_bundle("not-yet")
        published = api.publish("not-yet")
        assert published["digest"] == checked.json()["digest"]

    def test_check_refuses_what_publishing_refuses_naming_the_field(self, api: Api) -> None:
        refused = api.client.post(
            "/api/bundles/support-bot/versions/check",
            json=version_body(model="nosuchprov/x"),
            headers=api.keys["editor"],
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "model"

    def test_check_needs_the_editor_role(self, api: Api) -> None:
        response = api.client.post(
            "/api/bundles/support-bot/versions/check", json=version_body(), headers=api.keys["runtime"]
        )
        assert response.status_code == 403
