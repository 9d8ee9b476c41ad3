"""The parts of an OpenAI chat request chatver reads, and the client params it lets through."""

from __future__ import annotations

from typing import Any

from app.errors import invalid
from app.schemas import check_json_text

# OpenAI request fields a client may set; the bundle's own params win over them.
CLIENT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
        "user",
        "reasoning_effort",
        "modalities",
        "prediction",
        "service_tier",
        "store",
        "verbosity",
    }
)
# Fields chatver handles itself.
OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "prompt_variables"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_MESSAGES = 2048


def parse_chat_request(body: Any) -> dict[str, Any]:
    """Validate the shape chatver relies on; 422 naming the field otherwise."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    check_json_text(body)
    unknown = sorted(set(body) - CLIENT_PARAMS - OWN_FIELDS)
    if unknown:
        raise invalid(unknown[0], "is not a chat completion parameter chatver accepts")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "must be a bundle name such as 'support-bot'")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "must be a non-empty array")
    if len(messages) > MAX_MESSAGES:
        raise invalid("messages", f"at most {MAX_MESSAGES} messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages.{index}", "must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"messages.{index}.role", f"must be one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise invalid(f"messages.{index}.content", "must be a string, an array of parts, or null")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    options = body.get("stream_options")
    if options is not None and not (isinstance(options, dict) and set(options) <= {"include_usage"}):
        raise invalid("stream_options", 'only {"include_usage": bool} is supported')
    variables = body.get("prompt_variables", {})
    if not isinstance(variables, dict):
        raise invalid("prompt_variables", "must be an object")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= 256):
        raise invalid("user", "must be a string of 1 to 256 characters")
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 8):
        raise invalid("n", "must be an integer from 1 to 8")
    return body
