"""Property: no request body, path or query can make chatver answer 5xx.

Valid requests are mutated with arbitrary JSON (huge integers, floats, deep nesting,
control characters, lone surrogates, unknown fields) and sent to every write route.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, version_body

# Any code point, with the ones that break databases and parsers drawn often.
NASTY = ["\x00", "\ud800", "\udfff", "\u202e", "\n", "{", "}", "%", "_", "\\", "'", '"']
ANY_TEXT = st.text(
    alphabet=st.sampled_from(NASTY) | st.characters(codec=None, exclude_categories=()), max_size=40
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=12,
)
VERSION_FIELDS = [*version_body().keys(), "checkpoint", "semver", "parent", "lineage", "metrics", "unknown"]
PARAM_FIELDS = ["temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice", "api_base", "x"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def seeded(api: Api) -> Api:
    api.create_bundle()
    api.publish()
    api.to_production(1)
    api.publish(params={"temperature": 0.9})
    return api


def post(api: Api, path: str, body: Any, who: str) -> Any:
    return api.client.post(
        path,
        content=json.dumps(body).encode(),  # ASCII escapes, so lone surrogates arrive as \\udXXX
        headers={**api.keys[who], "content-type": "application/json"},
    )


def assert_client_error_or_success(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["detail"]


class TestNoServerErrorFromInput:
    @FUZZ
    @given(field=st.sampled_from(VERSION_FIELDS), value=JSON_VALUES, seed=st.integers(0, 2**62))
    def test_publish_with_any_field_value(self, seeded: Api, field: str, value: Any, seed: int) -> None:
        # A fresh seed makes a new config, so the version is really written (no dedupe).
        body = version_body(params={"seed": seed})
        body[field] = value
        assert_client_error_or_success(post(seeded, "/api/bundles/support-bot/versions", body, "editor"))

    @FUZZ
    @given(field=st.sampled_from(PARAM_FIELDS), value=JSON_VALUES, prompt=ANY_TEXT)
    def test_publish_with_any_param_and_prompt(
        self, seeded: Api, field: str, value: Any, prompt: str
    ) -> None:
        body = version_body(params={field: value}, system_prompt=prompt, variables={})
        assert_client_error_or_success(post(seeded, "/api/bundles/support-bot/versions", body, "editor"))

    @FUZZ
    @given(
        route=st.sampled_from(
            [
                ("/api/bundles/support-bot/versions/2/transitions", "approver"),
                ("/api/bundles/support-bot/rollback", "approver"),
                ("/api/bundles/support-bot/render", "runtime"),
                ("/api/bundles/support-bot/versions/2/approvals", "approver"),
                ("/api/bundles/support-bot/versions/2/evaluations", "editor"),
                ("/api/bundles", "editor"),
                ("/api/keys", "admin"),
            ]
        ),
        body=JSON_VALUES,
    )
    def test_other_write_routes_with_any_body(self, seeded: Api, route: tuple[str, str], body: Any) -> None:
        path, who = route
        assert_client_error_or_success(post(seeded, path, body, who))

    @FUZZ
    @given(raw_segment=ANY_TEXT.filter(lambda s: s not in {"", ".", ".."}), raw_query=ANY_TEXT)
    def test_paths_and_queries_with_any_text(self, seeded: Api, raw_segment: str, raw_query: str) -> None:
        # Percent-encode raw bytes (lone surrogates included) the way a hostile client could.
        segment = quote(raw_segment.encode("utf-8", "surrogatepass"), safe="")
        query = quote(raw_query.encode("utf-8", "surrogatepass"), safe="")
        runtime = seeded.keys["runtime"]
        for path in (
            f"/api/bundles/{segment}",
            f"/api/bundles/{segment}/active",
            f"/api/bundles/{segment}/history",
            f"/api/bundles/{segment}/versions",
            f"/api/bundles/support-bot/versions/{segment}",
            f"/api/bundles/support-bot/versions/{segment}/metrics",
            f"/api/experiments/{segment}",
            f"/api/bundles/support-bot/active?subject={query}",
            f"/api/bundles/support-bot/active?stage={query}",
            f"/api/bundles/support-bot/history?limit={query}",
            f"/api/bundles/support-bot/diff?from={query}&to={segment}",
            f"/api/bundles/support-bot/compare?versions={query}",
            f"/api/bundles/support-bot/versions/1/metrics?since={query}",
        ):
            assert_client_error_or_success(seeded.client.get(path, headers=runtime))
        for path in (f"/api/keys/{segment}", f"/api/experiments/{segment}/start"):
            method = "DELETE" if path.startswith("/api/keys") else "POST"
            assert_client_error_or_success(seeded.client.request(method, path, headers=seeded.keys["admin"]))
        assert_client_error_or_success(
            seeded.client.post(
                f"/api/bundles/{segment}/rollback", json={"reason": "x"}, headers=seeded.keys["admin"]
            )
        )
