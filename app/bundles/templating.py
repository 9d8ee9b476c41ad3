"""System prompt templates: publish-time checks and sandboxed, budgeted rendering.

Editors write templates; the gateway renders them on every chat call. So a template must neither
reach Python internals nor stall or exhaust a replica. Three layers hold that line: a static check
of the parsed template, Jinja's immutable sandbox with allowlisted filters and methods, and a
per-render budget. The AST is rewritten before compiling so that loops, ``~``, literals, slices and
compares pay into that budget just like operators, calls and filters do.
"""

from __future__ import annotations

import contextvars
import functools
import time
import types
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from jinja2 import meta, nodes, pass_environment, pass_eval_context
from jinja2.environment import Environment, Template
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.filters import FILTERS, do_replace, do_tojson, sync_do_join, sync_do_sum
from jinja2.runtime import Context, Macro, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS
from jinja2.visitor import NodeTransformer

from app.bundles.template_policy import (
    ALLOWED_FILTERS,
    PRINTF_SPEC,
    SAFE_METHODS,
    find_unsafe,
)
from app.errors import invalid

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 256 * 1024
MAX_VALUE_SIZE = 256 * 1024  # characters (+ 8 per item) of any one value a template builds
MAX_RENDER_WORK = 4 * 1024 * 1024  # the sizes of all values built during one render
MAX_LOOP_ITERATIONS = 10_000
MAX_MACRO_DEPTH = 10
MAX_INT_BITS = 128  # prompts need counters, not bignums; 9**9**9 is (9**9)**9 in Jinja
MAX_FORMAT_WIDTH = 256
RENDER_TIME_LIMIT_S = 0.5  # backstop for work no hook sees, such as comparing two big lists


class _Refused(Exception):
    """A render stopped by a guard; the message is written for the template's author."""


@dataclass
class _Budget:
    work: int = MAX_RENDER_WORK
    iterations: int = MAX_LOOP_ITERATIONS
    macro_depth: int = 0
    deadline: float = field(default_factory=lambda: time.monotonic() + RENDER_TIME_LIMIT_S)

    def spend(self, units: int) -> None:
        self.work -= units
        if self.work < 0:
            raise _Refused("the template does too much work")
        if time.monotonic() > self.deadline:
            raise _Refused("the template takes too long to render")


# Jinja folds constant expressions at compile time by calling filters early. Outside a render
# _BUDGET.get() raises, and Jinja then leaves the expression to render time, where it is paid for.
_BUDGET: contextvars.ContextVar[_Budget] = contextvars.ContextVar("chatver_template_budget")


def _weight(value: Any, limit: int) -> int:
    """What str() or tojson would walk, shared references counted each time; stops past limit."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        # A node costs 8 (walking it in Python costs far more than copying a character).
        total += 8 + (len(item) if isinstance(item, str) else 0)
        if isinstance(item, list | tuple | dict):
            if total + 8 * len(item) > limit:
                return total + 8 * len(item)
            stack.extend(item.items() if isinstance(item, dict) else item)
    return total


def _charge(value: Any) -> Any:
    budget = _BUDGET.get()
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Refused("a number grew too large")
    size = _weight(value, MAX_VALUE_SIZE)
    if size > MAX_VALUE_SIZE:
        raise _Refused("a value grew too large")
    budget.spend(size)
    return value


def _text(value: Any) -> str:
    if callable(value) and not isinstance(value, Undefined):  # its repr shows a memory address
        raise _Refused("a function or macro cannot be printed; call it instead")
    return cast(str, _charge(value if isinstance(value, str) else str(_charge(value))))


def _loop(iterable: Any, literal_chars: int) -> Iterator[Any]:
    budget = _BUDGET.get()
    for item in iterable:
        budget.iterations -= 1
        if budget.iterations < 0:
            raise _Refused(f"loops run more than {MAX_LOOP_ITERATIONS} times")
        budget.spend(1 + literal_chars)  # the body's literal text is output again each time
        yield item


def _concat(parts: list[Any]) -> str:
    texts = [_text(part) for part in parts]
    if sum(map(len, texts)) > MAX_VALUE_SIZE:  # refuse before allocating the joined string
        raise _Refused("a value grew too large")
    return cast(str, _charge("".join(texts)))


def _check_replace(text: str, old: str, new: str, count: int) -> None:
    hits = text.count(old) if old else len(text) + 1
    if len(text) + min(hits, count if count >= 0 else hits) * (len(new) - len(old)) > MAX_VALUE_SIZE:
        raise _Refused("replace() would build a value that is too large")


@pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    _check_replace(str(s), str(old), str(new), -1 if count is None else count)
    return do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    if len(items) * len(str(d)) > MAX_VALUE_SIZE:  # the separator is repeated once per item
        raise _Refused("join() would build a value that is too large")
    return sync_do_join(eval_ctx, items, d, attribute)


@pass_environment
def _sum(environment: Environment, iterable: Any, attribute: str | int | None = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):  # adding up lists or strings is quadratic
        raise _Refused("sum() only adds numbers")
    return sync_do_sum(environment, iterable, attribute, start)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> str:
    if indent is not None and not 0 <= indent <= 8:  # the indent is repeated on every line
        raise _Refused("tojson() indent must be between 0 and 8")
    return do_tojson(eval_ctx, value, indent)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps jinja_pass_arg, so Jinja still passes what the filter expects
    def run(*args: Any, **kwargs: Any) -> Any:
        _BUDGET.get()
        return _charge(fn(*args, **kwargs))

    return run


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints and right > 0 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _Refused("a power would build a number that is too large")
        if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _Refused("a product would build a number that is too large")
        if operator == "*" and isinstance(left, int) != isinstance(right, int):
            times, seq = (left, right) if isinstance(left, int) else (right, left)
            size = len(seq) if isinstance(seq, str) else _weight(seq, MAX_VALUE_SIZE)
            if isinstance(seq, str | list | tuple) and size * times > MAX_VALUE_SIZE:
                raise _Refused("repeating a value would build one that is too large")
        if operator == "%" and isinstance(left, str):
            for number in (n for spec in PRINTF_SPEC.finditer(left) for n in spec.groups()):
                if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
                    raise _Refused(f"%-format widths are limited to {MAX_FORMAT_WIDTH}")
        return _charge(self.binop_table[operator](left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if isinstance(obj, Undefined):
            return context.call(obj, *args, **kwargs)  # raises the undefined's own error
        if isinstance(obj, Macro):
            if budget.macro_depth >= MAX_MACRO_DEPTH:
                raise _Refused(f"macros call each other more than {MAX_MACRO_DEPTH} deep")
            budget.macro_depth += 1
            try:
                return _charge(context.call(obj, *args, **kwargs))
            finally:
                budget.macro_depth -= 1
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "this")
        allowed = any(isinstance(owner, kind) and name in names for kind, names in SAFE_METHODS.items())
        if not allowed or not isinstance(obj, types.BuiltinMethodType | types.MethodType):
            raise _Refused(f"calling {name}() is not allowed")
        if name == "replace" and isinstance(owner, str) and len(args) >= 2:
            _check_replace(owner, str(args[0]), str(args[1]), args[2] if len(args) > 2 else -1)
        return _charge(context.call(obj, *args, **kwargs))


def _make_environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, finalize=_text)
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict: only declared variables
    filters: dict[str, Callable[..., Any]] = dict(FILTERS)
    filters.update(replace=_replace, join=_join, sum=_sum, tojson=_tojson)
    env.filters = {name: _guarded(filters[name]) for name in ALLOWED_FILTERS}
    env.filters.update({"chatver:loop": _loop, "chatver:concat": _concat, "chatver:measure": _charge})
    # jinja2 types TESTS loosely (dict[str, function]); every value is a plain test function.
    tests = cast(dict[str, Callable[..., Any]], TESTS)
    env.tests = {name: _guarded(test) for name, test in tests.items()}
    return env


_ENV = _make_environment()


def _helper(name: str, node: nodes.Node, *args: Any) -> nodes.Filter:
    consts: list[nodes.Node] = [nodes.Const(arg, lineno=node.lineno) for arg in args]
    return nodes.Filter(node, name, consts, [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    """Routes loops, ``~``, literals, slices and compares through the render budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        # Each pass outputs the body's text again (nested loops' text too, which keeps this simple).
        literal = sum(len(data.data) for stmt in node.body for data in stmt.find_all(nodes.TemplateData))
        node.iter = _helper("chatver:loop", node.iter, literal)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _helper("chatver:concat", nodes.List(node.nodes, lineno=node.lineno))

    def _measured(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        constant = all(isinstance(n, nodes.Const | nodes.Pair) for n in node.find_all(nodes.Node))
        return node if constant else _helper("chatver:measure", node)

    visit_List = visit_Dict = visit_Compare = _measured

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._measured(node) if node.ctx == "load" else self.generic_visit(node)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        sliced = isinstance(node.arg, nodes.Slice) and node.ctx == "load"
        return self._measured(node) if sliced else self.generic_visit(node)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=4096)  # one entry per live prompt; a miss recompiles on the hot path
def _compile(source: str) -> tuple[Template, frozenset[str]]:
    """Check and compile once per distinct source; rendering is on the gateway's hot path."""
    size = _utf8_size(source)
    if size > MAX_TEMPLATE_BYTES:
        raise invalid("system_prompt", f"template is {size} bytes; the limit is {MAX_TEMPLATE_BYTES}")
    try:
        ast = _ENV.parse(source)
        if reason := find_unsafe(ast):
            raise invalid("system_prompt", reason)
        variables = frozenset(meta.find_undeclared_variables(ast))
        instrumented = cast(nodes.Template, _Instrument().visit(ast))
        instrumented.set_environment(_ENV)
        return _ENV.from_string(instrumented), variables
    except TemplateSyntaxError as exc:
        raise invalid("system_prompt", f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # Python's own compiler refuses the generated code past ~100 nested blocks or
        # ~200 chained expressions (SyntaxError/IndentationError), or runs out of stack.
        raise invalid("system_prompt", "template nests too deeply") from None
    except ValueError:  # the lexer refuses integer literals beyond Python's digit limit
        raise invalid("system_prompt", "template has a number literal that is too long") from None


def referenced_variables(*, source: str) -> set[str]:
    """Names the template reads from its context (raises 422 if the template fails its checks)."""
    return set(_compile(source)[1])


def check_template(*, source: str, declared: Collection[str]) -> None:
    """Publish-time check: size, syntax, unsafe constructs, and undeclared variables."""
    undeclared = referenced_variables(source=source) - set(declared)
    if undeclared:
        raise invalid("system_prompt", f"reads undeclared variables: {', '.join(sorted(undeclared))}")


_RUNTIME_MESSAGES: dict[type[Exception], str] = {
    _Refused: "",
    SecurityError: "the template tried an unsafe operation",
    ZeroDivisionError: "division by zero",
    OverflowError: "a number is too large",
    RecursionError: "the template recurses too deeply",
    TypeError: "an operation got values of the wrong type",
    ValueError: "an operation got an invalid value",
    LookupError: "an item is missing",
}


def _render_error(exc: Exception) -> str:
    """A message for the template's author that names the line but no Python internals."""
    kind = next((kind for kind in _RUNTIME_MESSAGES if isinstance(exc, kind)), None)
    if kind is not None:
        reason = _RUNTIME_MESSAGES[kind] or str(exc)
    else:
        reason = exc.message if isinstance(exc, TemplateError) and exc.message else "rendering failed"
    line, tb = None, exc.__traceback__
    while tb is not None:  # Jinja rewrites tracebacks so that template frames carry template lines
        line = tb.tb_lineno if tb.tb_frame.f_code.co_filename == "<template>" else line
        tb = tb.tb_next
    return f"line {line}: {reason}" if line else reason


def render_template(*, source: str, values: Mapping[str, Any]) -> str:
    """Render a template with already-resolved values; every failure is a 422."""
    template, variables = _compile(source)
    token = _BUDGET.set(_Budget())
    chunks: list[str] = []
    try:
        length = 0
        for chunk in template.generate(dict(values)):
            length += len(chunk)
            if length > MAX_OUTPUT_BYTES:  # stop early: characters never outnumber bytes
                raise _Refused("the rendered prompt is too large")
            chunks.append(chunk)
    except UndefinedError as exc:
        # StrictUndefined words a missing variable as "'name' is undefined".
        for name in sorted(variables - values.keys()):
            if exc.message == f"{name!r} is undefined":
                raise invalid(f"variables.{name}", f"required variable {name} is missing") from None
        raise invalid("system_prompt", _render_error(exc)) from None
    except Exception as exc:  # the template is user code: whatever it raises is the template's fault
        raise invalid("system_prompt", _render_error(exc)) from None
    finally:
        _BUDGET.reset(token)
    text = "".join(chunks)
    if _utf8_size(text) > MAX_OUTPUT_BYTES:
        raise invalid("system_prompt", "the rendered prompt is too large")
    return text
