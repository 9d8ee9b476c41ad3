"""Template injection through the API: refused at publish or render, never run, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import Api

PUBLISH_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__ }}",
    "{{ x['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ x.__init__.__globals__['__builtins__']['eval']('1') }}",
    "{{ 'x'.center(1000000000) }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{% set a = x.__class__ %}{{ a }}",
    "{{ x|map(attribute='__class__')|list }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
]


# Syntactically harmless until evaluated: refused when rendered.
RENDER_PAYLOADS = ["{{ 9**9**9 }}", "{{ 'a' * 1000000000 }}", "{{ (x ~ x) * 100000000 }}"]


@pytest.fixture
def bundle(api: Api) -> Api:
    api.create_bundle()
    return api


class TestTemplateInjection:
    @pytest.mark.parametrize("payload", PUBLISH_PAYLOADS)
    def test_payload_is_refused_at_publish(self, bundle: Api, payload: str) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/versions",
            json={
                "model": "openai/gpt-4o-mini",
                "system_prompt": payload,
                "variables": {"x": {"default": "v"}},
            },
            headers=bundle.keys["editor"],
        )
        assert response.status_code == 422, response.text
        text = response.text
        assert "Traceback" not in text and "<class" not in text and "object at 0x" not in text
        assert bundle.versions_count() == 0

    @pytest.mark.parametrize("payload", RENDER_PAYLOADS)
    def test_payload_is_refused_at_render(self, bundle: Api, payload: str) -> None:
        bundle.publish(system_prompt=payload, variables={"x": {"default": "v"}})
        response = bundle.client.post(
            "/api/bundles/support-bot/render", json={"version": 1}, headers=bundle.keys["runtime"]
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "system_prompt"

    def test_variable_values_are_data_not_templates(self, bundle: Api) -> None:
        bundle.publish(system_prompt="Hello {{ name }}", variables={"name": {"required": True}})
        bundle.to_production(1)
        response = bundle.client.post(
            "/api/bundles/support-bot/render",
            json={"variables": {"name": "{{ ''.__class__.__mro__ }} {% raw %}"}},
            headers=bundle.keys["runtime"],
        )
        assert response.status_code == 200
        assert response.json()["system_prompt"] == "Hello {{ ''.__class__.__mro__ }} {% raw %}"

    def test_runaway_render_is_422_not_500(self, bundle: Api) -> None:
        bundle.publish(
            system_prompt="{% for a in items %}{% for b in items %}{{ big }}{% endfor %}{% endfor %}",
            variables={"items": {"required": True}, "big": {"required": True}},
        )
        bundle.to_production(1)
        response = bundle.client.post(
            "/api/bundles/support-bot/render",
            json={"variables": {"items": list(range(256)), "big": "x" * 16000}},
            headers=bundle.keys["runtime"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "system_prompt"


class TestDeeplyNestedTemplates:
    @pytest.mark.parametrize(
        "template",
        [
            "{{ x" + " + x" * 200 + " }}",
            "{{ x" + "|upper" * 201 + " }}",
            "{% if x %}" * 100 + "y" + "{% endif %}" * 100,
            "{% macro m() %}{{ caller() }}{% endmacro %}"
            + "{% call m() %}" * 99
            + "z"
            + "{% endcall %}" * 99,
            "{{ " + "(" * 300 + "x" + ")" * 300 + " }}",
        ],
        ids=["long-sum", "long-filter-chain", "nested-ifs", "nested-calls", "nested-parens"],
    )
    def test_is_a_422_not_a_500(self, bundle: Api, template: str) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/versions",
            json={
                "model": "openai/gpt-4o-mini",
                "system_prompt": template,
                "variables": {"x": {"default": "v"}},
            },
            headers=bundle.keys["editor"],
        )
        assert response.status_code in {201, 422}, response.text
        assert bundle.versions_count() == (1 if response.status_code == 201 else 0)
