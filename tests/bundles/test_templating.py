"""System prompt templates: publish-time checks, sandboxed rendering, and variable resolution."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from app.bundles.templating import (
    MAX_TEMPLATE_BYTES,
    check_template,
    referenced_variables,
    render_template,
)
from app.bundles.variables import resolve_values
from app.errors import Unprocessable

VALUES: dict[str, Any] = {
    "x": "hi",
    "company": "Acme",
    "tone": "friendly",
    "items": ["apples", "pears"],
    "user": {"name": "Ann", "tags": ["vip"]},
}


def render(source: str, **values: Any) -> str:
    return render_template(source=source, values=values or VALUES)


def refusal(call: Any, **kwargs: Any) -> Unprocessable:
    with pytest.raises(Unprocessable) as caught:
        call(**kwargs)
    return caught.value


def field_and_message(exc: Unprocessable) -> tuple[str, str]:
    assert exc.status == 422
    return exc.errors[0].field, exc.errors[0].message


# Each must be refused with a 422, never run and never raise anything else.
ESCAPES = [
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
    "{{ request.application.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ config.items() }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{0.__class__}'.format_map(x) }}",
    "{{ 'x'.center(1000000000) }}",
    "{{ x.ljust(1000000000) }}",
    "{{ x.zfill(1000000000) }}",
    "{{ x.expandtabs(1000000000) }}",
    "{% set a = x.__class__ %}",
    "{{ items|map(attribute='__class__')|list }}",
    "{{ items|selectattr('__class__')|list }}",
    "{{ items|sort(attribute='__class__') }}",
    "{{ items|map('attr', '__class__')|list }}",
    "{{ x|format(1) }}",
    "{{ range(10) }}",
    "{% include 'other' %}",
    "{% import 'other' as o %}",
    "{% from 'other' import m %}",
    "{% extends 'base' %}",
    "{% block b %}{% endblock %}",
    "{% for a in items %}{% for b in items %}{% for c in items %}{% endfor %}{% endfor %}{% endfor %}",
    "{% for a in items recursive %}{{ loop(a) }}{% endfor %}",
]
PRINTED_METHODS = ["{{ x.upper }}", "{% set f = x.format %}{{ f }}", "{{ x ~ x.split }}"]
# Harmless to publish, refused when they run: the values involved are only known then.
RUNAWAYS = [
    "{{ 9**9**9 }}",
    "{{ 9**(9**9) }}",
    "{{ 'a'*1000000000 }}",
    "{{ [x]*1000000000 }}",
    "{{ 99999999999999999999 * 99999999999999999999 * 99999999999999999999 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%.999999999f' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{% set f = x.format %}{{ f('{0.__class__}') }}",
    "{{ x['center'](1000000000) }}",
    "{% set a = x %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}",
    "{% set a = x %}" + "{% set a = a + a %}" * 40 + "{{ a|length }}",
    "{% set a = [x] %}" + "{% set a = [a, a] %}" * 40 + "{{ a }}",
    "{% set a = [x] %}" + "{% set a = [a, a] %}" * 40 + "{{ a|tojson }}",
    "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    "{% macro m(s) %}{{ m(s ~ s) }}{% endmacro %}{{ m(x) }}",
    "{{ (x * 1000)|replace('', x * 1000) }}",
    "{{ (x * 1000).replace('i', x * 1000) }}",
    "{{ (x * 10000)|join(x * 10000) }}",
    "{{ items|tojson(1000000) }}",
    "{{ items|sum(start=[]) }}",
    "{% set s = x * 1000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% set s = x * 100000 %}{{ s }}{{ s }}{{ s }}",
]


class TestDeclaredVariablesRender:
    def test_declared_variables_are_substituted(self) -> None:
        source = "You are {{ company }}'s support agent. Answer in a {{ tone }} tone."
        assert render(source) == "You are Acme's support agent. Answer in a friendly tone."

    def test_defaults_apply_when_the_caller_leaves_a_variable_out(self) -> None:
        variables = {"company": {"default": "Acme"}, "tone": {"required": True}}
        values = resolve_values(variables=variables, provided={"tone": "warm"})
        assert render_template(source="{{ company }}/{{ tone }}", values=values) == "Acme/warm"

    def test_if_blocks_choose_a_branch(self) -> None:
        source = "{% if user.name == 'Ann' %}hello Ann{% else %}who?{% endif %}"
        assert render(source) == "hello Ann"

    def test_for_loops_walk_a_list_variable(self) -> None:
        source = "{% for item in items %}{{ loop.index }}.{{ item }} {% endfor %}"
        assert render(source) == "1.apples 2.pears "

    def test_common_filters_work(self) -> None:
        source = "{{ company|upper }} {{ missing|default('n/a') }} {{ items|join(', ') }}"
        assert render(source) == "ACME n/a apples, pears"

    def test_allowed_methods_macros_and_concatenation_work(self) -> None:
        source = (
            "{% macro shout(s) %}{{ s.upper() }}!{% endmacro %}"
            "{{ shout(x) }} {{ user.get('name') ~ '/' ~ tone.split('n')[0] }} {{ (x * 2)[::-1] }}"
        )
        assert render(source) == "HI! Ann/frie ihih"

    def test_call_blocks_and_set_blocks_work(self) -> None:
        source = (
            "{% macro box() %}[{{ caller() }}]{% endmacro %}"
            "{% set s %}{{ x }}!{% endset %}{% call box() %}{{ s }}{% endcall %}"
        )
        assert render(source) == "[hi!]"

    def test_emoji_rtl_and_combining_marks_render_intact(self) -> None:
        text = "👩‍💻 שלום مرحبا e\u0301 \U0001f1fa\U0001f1f8"
        assert render("« {{ x }} »", x=text) == f"« {text} »"

    def test_a_two_level_loop_over_real_data_fits_the_budget(self) -> None:
        rows = [{"q": f"question {i}", "tags": [f"t{j}" for j in range(20)]} for i in range(100)]
        source = "{% for r in rows %}{{ r.q }}:{% for t in r.tags %}{{ t }},{% endfor %}\n{% endfor %}"
        assert render(source, rows=rows).count("\n") == 100


class TestSyntaxErrors:
    def test_an_unclosed_if_reports_its_line(self) -> None:
        exc = refusal(check_template, source="Hello\n{{ x }}\n{% if x %}\n", declared={"x"})
        field, message = field_and_message(exc)
        assert field == "system_prompt"
        assert message.startswith("line 3: ")
        assert "endif" in message

    def test_an_unknown_tag_reports_its_line(self) -> None:
        exc = refusal(check_template, source="a\nb\n{% exec x %}", declared={"x"})
        assert field_and_message(exc)[1].startswith("line 3: ")

    def test_an_overlong_number_literal_is_a_422(self) -> None:
        exc = refusal(check_template, source="{{ " + "9" * 5000 + " }}", declared=set())
        assert field_and_message(exc)[0] == "system_prompt"

    def test_absurdly_deep_nesting_is_a_422(self) -> None:
        source = "{{ " + "(" * 5000 + "x" + ")" * 5000 + " }}"
        exc = refusal(check_template, source=source, declared={"x"})
        assert field_and_message(exc)[0] == "system_prompt"


class TestUndeclaredVariables:
    def test_every_undeclared_variable_is_named_in_order(self) -> None:
        source = "{{ user }} {{ tone }} {{ company }}"
        exc = refusal(check_template, source=source, declared={"company"})
        assert field_and_message(exc) == ("system_prompt", "reads undeclared variables: tone, user")

    def test_names_the_template_assigns_itself_are_not_variables(self) -> None:
        source = (
            "{% set greeting = 'hi' %}{% for item in items %}{{ item }}{{ loop.index }}{% endfor %}"
            "{% macro m(arg) %}{{ arg }}{% endmacro %}{{ m(greeting) }}{{ company }}"
        )
        assert referenced_variables(source=source) == {"items", "company"}
        check_template(source=source, declared={"items", "company"})

    def test_jinja_globals_are_not_available(self) -> None:
        source = "{{ range(3) }}{{ lipsum() }}{{ cycler(1) }}{{ joiner() }}{{ namespace() }}{{ dict() }}"
        exc = refusal(check_template, source=source, declared=set())
        assert field_and_message(exc)[1] == (
            "reads undeclared variables: cycler, dict, joiner, lipsum, namespace, range"
        )


class TestTemplateSize:
    def test_a_template_of_exactly_64_kib_is_accepted(self) -> None:
        check_template(source="a" * MAX_TEMPLATE_BYTES, declared=set())

    def test_a_template_one_byte_over_64_kib_is_rejected(self) -> None:
        exc = refusal(check_template, source="a" * (MAX_TEMPLATE_BYTES + 1), declared=set())
        assert field_and_message(exc) == ("system_prompt", "template is 65537 bytes; the limit is 65536")

    def test_the_limit_counts_utf8_bytes_not_characters(self) -> None:
        source = "é" * (MAX_TEMPLATE_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
        refusal(check_template, source=source, declared=set())


class TestEscapesAreRefused:
    @pytest.fixture(autouse=True)
    def no_process_is_started(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        started: list[Any] = []
        monkeypatch.setattr(os, "popen", lambda *a, **k: started.append(a))
        monkeypatch.setattr(os, "system", lambda *a, **k: started.append(a))
        monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
        yield
        assert started == []

    @pytest.mark.parametrize("source", ESCAPES)
    def test_publishing_an_escape_is_a_422_on_the_prompt(self, source: str) -> None:
        exc = refusal(check_template, source=source, declared={"x", "items"})
        assert field_and_message(exc)[0] == "system_prompt"

    @pytest.mark.parametrize("source", ESCAPES)
    def test_publishing_an_escape_without_declared_variables_is_a_422(self, source: str) -> None:
        refusal(check_template, source=source, declared=set())

    @pytest.mark.parametrize("source", ESCAPES)
    def test_rendering_an_escape_that_skipped_the_check_is_a_422(self, source: str) -> None:
        refusal(render_template, source=source, values=VALUES)

    def test_private_names_reached_through_a_variable_key_are_refused_at_render(self) -> None:
        exc = refusal(render_template, source="{{ x[k] }}", values={"x": "hi", "k": "__class__"})
        assert field_and_message(exc) == ("system_prompt", "line 1: the template tried an unsafe operation")

    @pytest.mark.parametrize("source", PRINTED_METHODS)
    def test_printing_a_method_is_refused_because_its_repr_shows_an_address(self, source: str) -> None:
        exc = refusal(render_template, source=source, values=VALUES)
        assert "cannot be printed" in field_and_message(exc)[1]

    def test_the_reason_names_the_private_attribute_and_line(self) -> None:
        exc = refusal(check_template, source="ok\n{{ x.__class__ }}", declared={"x"})
        assert field_and_message(exc)[1] == "line 2: access to private attribute '__class__' is not allowed"


class TestRunawayTemplatesAreStopped:
    @pytest.mark.parametrize("source", RUNAWAYS)
    def test_publishing_returns_quickly(self, source: str) -> None:
        started = time.monotonic()
        check_template(source=source, declared={"x", "items"})
        assert time.monotonic() - started < 1

    @pytest.mark.parametrize("source", RUNAWAYS)
    def test_rendering_is_a_quick_422_on_the_prompt(self, source: str) -> None:
        started = time.monotonic()
        exc = refusal(render_template, source=source, values=VALUES)
        assert time.monotonic() - started < 1
        assert field_and_message(exc)[0] == "system_prompt"

    def test_the_reason_says_what_grew(self) -> None:
        exc = refusal(render_template, source="\n{{ 'a' * 1000000000 }}", values={})
        assert field_and_message(exc)[1] == "line 2: repeating a value would build one that is too large"

    def test_output_over_256_kib_is_refused(self) -> None:
        big = "x" * 16 * 1024
        source = "{% for i in items %}{{ big }}{% endfor %}"
        assert len(render(source, big=big, items=list(range(16)))) == 256 * 1024
        exc = refusal(render_template, source=source, values={"big": big, "items": list(range(17))})
        assert "too large" in field_and_message(exc)[1]


class TestRenderErrors:
    def test_a_missing_variable_names_the_variable(self) -> None:
        exc = refusal(render_template, source="{{ company }} {{ tone }}", values={"company": "Acme"})
        assert field_and_message(exc) == ("variables.tone", "required variable tone is missing")

    def test_optional_variables_can_be_tested_for(self) -> None:
        source = "{% if tone is defined %}{{ tone }}{% else %}neutral{% endif %} {{ tone|default('-') }}"
        assert render_template(source=source, values={}) == "neutral -"

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("{{ 1 / 0 }}", "line 1: division by zero"),
            ("\n{{ 1 + x }}", "line 2: an operation got values of the wrong type"),
            ("{{ items[7] }}", "line 1: list object has no element 7"),
            ("{{ user.age }}", "line 1: 'dict object' has no attribute 'age'"),
        ],
    )
    def test_runtime_errors_name_the_line_but_no_python_internals(self, source: str, message: str) -> None:
        exc = refusal(render_template, source=source, values=VALUES)
        assert field_and_message(exc) == ("system_prompt", message)
        assert "Error" not in exc.detail and "Traceback" not in exc.detail


class TestResolveValues:
    VARIABLES: dict[str, dict[str, Any]] = {
        "company": {"default": "Acme"},
        "tone": {"required": True, "description": "e.g. friendly"},
        "note": {},
        "nothing": {"default": None},
    }

    def resolve(self, provided: dict[str, Any]) -> dict[str, Any]:
        return resolve_values(variables=self.VARIABLES, provided=provided)

    def test_defaults_fill_in_and_the_caller_wins(self) -> None:
        assert self.resolve({"tone": "warm"}) == {"company": "Acme", "tone": "warm", "nothing": None}
        assert self.resolve({"tone": "warm", "company": "Initech"})["company"] == "Initech"

    def test_an_undeclared_variable_is_a_422_naming_it(self) -> None:
        exc = refusal(self.resolve, provided={"tone": "warm", "secret": 1})
        assert field_and_message(exc) == ("variables.secret", "undeclared variable")

    def test_a_missing_required_variable_is_a_422_naming_it(self) -> None:
        exc = refusal(self.resolve, provided={"company": "Initech"})
        assert field_and_message(exc) == ("variables.tone", "required variable tone is missing")

    def test_json_values_of_every_kind_are_accepted(self) -> None:
        value = {"s": "é👍", "i": -3, "f": 1.5, "b": True, "n": None, "l": [1, [2, {"k": "v"}]]}
        assert self.resolve({"tone": value})["tone"] == value

    def test_nesting_up_to_8_levels_is_accepted(self) -> None:
        value: Any = "leaf"
        for _ in range(8):
            value = [value]
        assert self.resolve({"tone": value})["tone"] == value

    @pytest.mark.parametrize(
        "value",
        [
            "a" * (16 * 1024 + 1),
            "é" * (8 * 1024 + 1),
            list(range(257)),
            {str(i): i for i in range(257)},
            [[[[[[[[["too deep"]]]]]]]]],
            {1: "non-string key"},
            {"a", "set"},
            b"bytes",
            float("nan"),
            2**200,
            object(),
        ],
    )
    def test_oversized_or_non_json_values_are_a_422_naming_the_variable(self, value: Any) -> None:
        exc = refusal(self.resolve, provided={"tone": value})
        assert field_and_message(exc)[0] == "variables.tone"


class TestCompiledTemplatesAreReused:
    def test_rendering_the_same_source_twice_compiles_it_once(self) -> None:
        from app.bundles import templating

        source = "{{ company }} reused " + str(time.monotonic())
        render(source)
        hits = templating._compile.cache_info().hits
        render(source)
        assert templating._compile.cache_info().hits == hits + 1
