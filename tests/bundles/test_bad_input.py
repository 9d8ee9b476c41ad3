"""Bad input: a 4xx that names the field or rule, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, version_body


@pytest.fixture
def bundle(api: Api) -> Api:
    api.create_bundle()
    return api


def publish_raw(api: Api, body: Any) -> Any:
    """POST the body as ASCII JSON, so that lone surrogates travel as \\ud800 escapes."""
    return api.client.post(
        "/api/bundles/support-bot/versions",
        content=json.dumps(body).encode(),
        headers={**api.keys["editor"], "content-type": "application/json"},
    )


BAD_VERSIONS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown param", {"params": {"temperature": 0.2, "api_key": "x"}}, "params.api_key"),
    ("temperature too high", {"params": {"temperature": 2.5}}, "params.temperature"),
    ("temperature as string", {"params": {"temperature": "0.2"}}, "params.temperature"),
    ("top_p negative", {"params": {"top_p": -0.1}}, "params.top_p"),
    ("max_tokens zero", {"params": {"max_tokens": 0}}, "params.max_tokens"),
    ("max_tokens float", {"params": {"max_tokens": 1.5}}, "params.max_tokens"),
    ("five stop strings", {"params": {"stop": ["a", "b", "c", "d", "e"]}}, "params.stop"),
    ("zero timeout", {"params": {"timeout": 0}}, "params.timeout"),
    ("api_base not allowed", {"params": {"api_base": "http://169.254.169.254/latest"}}, "params.api_base"),
    ("api_base not a URL", {"params": {"api_base": "file:///etc/passwd"}}, "params.api_base"),
    ("mock_response disabled", {"params": {"mock_response": "hi"}}, "params.mock_response"),
    ("unknown provider", {"model": "nosuchprovider/gpt"}, "model"),
    ("model without provider", {"model": "my-model"}, "model"),
    ("model wrong type", {"model": 42}, "model"),
    (
        "checkpoint on another provider",
        {"checkpoint": {"ref": "ft:x", "base_model": "anthropic/claude-3-5-sonnet"}},
        "checkpoint.base_model",
    ),
    ("checkpoint without ref", {"checkpoint": {"base_model": "openai/gpt-4o-mini"}}, "checkpoint.ref"),
    ("unknown top-level field", {"colour": "blue"}, "colour"),
    ("bad semver", {"semver": "1.2"}, "semver"),
    ("bad variable name", {"variables": {"1bad": {}}, "system_prompt": "hi"}, "variables"),
    (
        "required with default",
        {"variables": {"tone": {"required": True, "default": "x"}, "company": {}}},
        "variables.tone",
    ),
    ("undeclared variable", {"variables": {"company": {}}}, "system_prompt"),
    (
        "template syntax error",
        {"system_prompt": "Hi\n\n{% if tone %}open", "variables": {"tone": {}}},
        "system_prompt",
    ),
    (
        "template reaches internals",
        {"system_prompt": "{{ company.__class__ }}", "variables": {"company": {}}},
        "system_prompt",
    ),
    ("NUL in prompt", {"system_prompt": "hi\x00there", "variables": {}}, "system_prompt"),
    ("lone surrogate", {"message": "\ud800"}, "message"),
    (
        "secret in lineage",
        {"lineage": {"env": {"OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz012345"}}},
        "lineage.env.OPENAI_API_KEY",
    ),
    (
        "secret in prompt",
        {"system_prompt": "use key sk-abcdefghijklmnopqrstuvwxyz0123", "variables": {}},
        "system_prompt",
    ),
    ("metric not a number", {"metrics": {"eval/accuracy": "high"}}, "metrics.eval/accuracy"),
    ("metric boolean", {"metrics": {"eval/accuracy": True}}, "metrics.eval/accuracy"),
    ("parent out of range", {"parent": 2**40}, "parent"),
    ("negative parent", {"parent": -1}, "parent"),
]


class TestVersionValidation:
    @pytest.mark.parametrize(("case", "overrides", "field"), BAD_VERSIONS, ids=[c[0] for c in BAD_VERSIONS])
    def test_bad_version_is_422_naming_the_field_and_writes_nothing(
        self, bundle: Api, case: str, overrides: dict[str, Any], field: str
    ) -> None:
        response = publish_raw(bundle, version_body(**overrides))
        assert response.status_code == 422, f"{case}: {response.status_code} {response.text}"
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == 422
        fields = [e["field"] for e in problem["errors"]]
        assert any(f == field or f.startswith(field + ".") for f in fields), f"{case}: {fields}"
        assert bundle.versions_count() == 0
        assert "Traceback" not in response.text and "jinja2" not in response.text.lower()

    def test_syntax_error_reports_the_line(self, bundle: Api) -> None:
        response = publish_raw(
            bundle, version_body(system_prompt="Hi\n\n{% if tone %}open", variables={"tone": {}})
        )
        assert "line" in response.json()["detail"]

    def test_undeclared_variables_are_named(self, bundle: Api) -> None:
        response = publish_raw(bundle, version_body(variables={}))
        assert "company" in response.json()["detail"] and "tone" in response.json()["detail"]

    def test_oversized_template_is_refused(self, bundle: Api) -> None:
        response = publish_raw(bundle, version_body(system_prompt="x" * (64 * 1024 + 1), variables={}))
        assert response.status_code == 422
        assert bundle.versions_count() == 0

    def test_body_over_one_mebibyte_is_413(self, bundle: Api) -> None:
        response = publish_raw(bundle, version_body(message="x" * (1024 * 1024 + 10)))
        assert response.status_code == 413
        assert response.json()["status"] == 413

    def test_nan_is_refused(self, bundle: Api) -> None:
        raw = '{"model": "openai/gpt-4o", "system_prompt": "hi", "metrics": {"m": NaN}}'
        response = bundle.client.post(
            "/api/bundles/support-bot/versions",
            content=raw.encode(),
            headers={**bundle.keys["editor"], "content-type": "application/json"},
        )
        assert response.status_code == 422

    def test_malformed_json_is_a_4xx(self, bundle: Api) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/versions",
            content=b'{"model": ',
            headers={**bundle.keys["editor"], "content-type": "application/json"},
        )
        assert response.status_code == 422
        deep = b"[" * 100_000 + b"]" * 100_000
        response = bundle.client.post(
            "/api/bundles/support-bot/versions",
            content=deep,
            headers={**bundle.keys["editor"], "content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500

    def test_unicode_survives_round_trip(self, bundle: Api) -> None:
        prompt = "Réponds 🙂 בעברית e\u0301 — {{ tone }}"
        created = publish_raw(
            bundle, version_body(system_prompt=prompt, variables={"tone": {"default": "ok"}})
        )
        assert created.status_code == 201
        fetched = bundle.client.get(
            "/api/bundles/support-bot/versions/1", headers=bundle.keys["runtime"]
        ).json()
        assert fetched["system_prompt"] == prompt

    def test_unknown_bundle_publish_is_404(self, bundle: Api) -> None:
        response = bundle.client.post(
            "/api/bundles/nope/versions", json=version_body(), headers=bundle.keys["editor"]
        )
        assert response.status_code == 404


class TestPathAndQueryValidation:
    @pytest.mark.parametrize(
        "path", ["/versions/99999999999999999999", "/versions/abc", "/versions/@1.x", "/versions/-1"]
    )
    def test_bad_version_selectors_are_422_or_404(self, bundle: Api, path: str) -> None:
        response = bundle.client.get(f"/api/bundles/support-bot{path}", headers=bundle.keys["runtime"])
        assert response.status_code in {404, 422}

    def test_huge_numbers_in_transitions_are_422(self, bundle: Api) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/versions/99999999999999999999/transitions",
            json={"to": "staging"},
            headers=bundle.keys["editor"],
        )
        assert response.status_code == 422

    def test_diff_needs_from_and_to(self, bundle: Api) -> None:
        response = bundle.client.get("/api/bundles/support-bot/diff?from=1", headers=bundle.keys["runtime"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "to"

    def test_bad_bundle_names_are_422(self, api: Api) -> None:
        for name in ["Support", "-bot", "a" * 64, "bot_1", "", "bøt"]:
            response = api.client.post("/api/bundles", json={"name": name}, headers=api.keys["editor"])
            assert response.status_code == 422, name
            assert response.json()["errors"][0]["field"] == "name"

    def test_unknown_stage_in_transition_is_422(self, bundle: Api) -> None:
        bundle.publish()
        response = bundle.move(1, "heaven")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "to"
