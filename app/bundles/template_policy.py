"""What a prompt template may use, and the static check that refuses the rest at publish time.

The sandbox in ``app.bundles.templating`` enforces the same allow-lists again at render time.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import nodes
from jinja2.runtime import LoopContext
from jinja2.tests import TESTS

MAX_LOOP_NESTING = 2


def _names(*groups: str) -> frozenset[str]:
    return frozenset(" ".join(groups).split())


# Linear-cost filters only: center, indent, wordwrap, format, batch and slice turn a short template
# into a huge value, attr reaches any attribute, random makes renders irreproducible.
ALLOWED_FILTERS = _names(
    "abs capitalize count d default dictsort e escape first float int items join last length list",
    "lower map max min reject rejectattr replace reverse round safe select selectattr sort string",
    "striptags sum title tojson trim truncate unique upper wordcount",
)
# The only methods a template may call; format, center, zfill, expandtabs and the rest are refused.
SAFE_METHODS: dict[type, frozenset[str]] = {
    str: _names(
        "capitalize casefold count endswith find index isalnum isalpha isdigit islower isnumeric",
        "isspace istitle isupper lower lstrip partition removeprefix removesuffix replace rfind rindex",
        "rpartition rsplit rstrip split splitlines startswith strip striptags swapcase title unescape upper",
    ),
    dict: _names("get items keys values"),
    list: _names("count index"),
    tuple: _names("count index"),
    LoopContext: _names("cycle changed"),
}
CALLABLE_NAMES = frozenset().union(*SAFE_METHODS.values())
PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?")
# No loader and no inheritance: a prompt is one self-contained template.
UNAVAILABLE_TAGS = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends, nodes.Block)


def _private(name: object) -> bool:
    return isinstance(name, str) and any(part.startswith("_") for part in name.split("."))


def _literal(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _unsafe_reason(node: nodes.Node, loops: int) -> str | None:
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return f"access to private attribute {node.attr!r} is not allowed"
    if isinstance(node, nodes.Getitem) and _private(_literal(node.arg)):
        return f"access to private item {_literal(node.arg)!r} is not allowed"
    if isinstance(node, nodes.Name) and node.name == "self":
        return "'self' is not available in prompts"
    if isinstance(node, UNAVAILABLE_TAGS):
        return "import, include, extends and block are not available in prompts"
    if isinstance(node, nodes.For) and (node.recursive or loops > MAX_LOOP_NESTING):
        return f"for loops may nest at most {MAX_LOOP_NESTING} deep and may not be recursive"
    method = node.node if isinstance(node, nodes.Call) else None
    if isinstance(method, nodes.Getattr) and method.attr not in CALLABLE_NAMES:
        return f"calling .{method.attr}() is not allowed"
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        return f"filter {node.name!r} is not allowed"
    if not isinstance(node, nodes.Filter | nodes.Test):
        return None
    if any(kw.key == "attribute" and _private(_literal(kw.value)) for kw in node.kwargs):
        return "filters may not read private attributes"
    if node.name in {"map", "select", "reject", "selectattr", "rejectattr"}:
        # These look filters, tests and attributes up by name at render time: names must be literal.
        by_attribute = node.name.endswith("attr")
        fixed = [_literal(arg) for arg in node.args[: 2 if by_attribute else 1]]
        if node.dyn_args or node.dyn_kwargs or not all(isinstance(name, str) for name in fixed):
            return f"{node.name}() needs literal names as arguments"
        if by_attribute and fixed and _private(fixed[0]):
            return "filters may not read private attributes"
        chosen = fixed[1:] if by_attribute else fixed
        if chosen and chosen[0] not in (ALLOWED_FILTERS if node.name == "map" else TESTS):
            return f"{node.name}() may not use {chosen[0]!r}"
    return None


def find_unsafe(node: nodes.Node, loops: int = 0) -> str | None:
    loops += isinstance(node, nodes.For)
    for child in node.iter_child_nodes():  # innermost first: it names the real culprit
        if found := find_unsafe(child, loops):
            return found
    reason = _unsafe_reason(node, loops)
    return f"line {node.lineno}: {reason}" if reason else None
