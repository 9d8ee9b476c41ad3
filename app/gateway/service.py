"""One chat call: choose the version, render its prompt, call it through LiteLLM, attribute it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import litellm
import litellm.exceptions as llm_errors
import openai
from fastapi.responses import JSONResponse, StreamingResponse

from app.bundles.providers import provider_of
from app.bundles.templating import render_template
from app.bundles.variables import resolve_values
from app.cache.resolver import ActiveResolver, Served
from app.errors import ChatverError, FieldError, Unprocessable, invalid
from app.events.models import ChatEvent
from app.events.service import new_request_id
from app.events.writer import EventWriter
from app.gateway.llm import DEPLOYMENT_PARAMS, LLMRouter
from app.gateway.schemas import CLIENT_PARAMS
from app.gateway.selectors import parse_model
from app.settings import Settings, origin_of

logger = logging.getLogger("chatver.gateway")


class UpstreamError(ChatverError):
    status, title, type_, openai_type = 502, "Bad Gateway", "upstream_error", "api_error"


class UpstreamTimeout(ChatverError):
    status, title, type_, openai_type = 504, "Gateway Timeout", "upstream_timeout", "timeout"


class UpstreamRejected(ChatverError):
    status, title, type_, openai_type = 400, "Bad Request", "upstream_rejected", "invalid_request_error"


# What a provider call can raise: LiteLLM's exceptions all derive from openai.APIError.
UPSTREAM_ERRORS = (openai.APIError, httpx.HTTPError)
# Providers that fetch image and file URLs themselves; for the others LiteLLM would fetch
# them from inside chatver, reaching hosts no allow-list covers.
FETCHES_OWN_MEDIA = frozenset({"openai", "azure", "azure_ai"})
MEDIA_PARTS = ("image_url", "file", "input_audio")


def _prompt_values(variables: Mapping[str, Any], provided: Mapping[str, Any]) -> dict[str, Any]:
    """resolve_values, with errors named after the request field a gateway client sends."""
    try:
        return resolve_values(variables=variables, provided=provided)
    except Unprocessable as exc:
        exc.errors = [
            FieldError("prompt_" + e.field, e.message) if e.field.startswith("variables.") else e
            for e in exc.errors
        ]
        exc.detail = exc.detail.replace("variables.", "prompt_variables.", 1)
        raise


def _check_media(model: str, messages: list[dict[str, Any]]) -> None:
    """Refuse remote media URLs that chatver itself would have to download."""
    if provider_of(model) in FETCHES_OWN_MEDIA:
        return
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part_index, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            for kind in MEDIA_PARTS:
                value = part.get(kind)
                url = (
                    value.get("url") if isinstance(value, dict) else value if isinstance(value, str) else None
                )
                if isinstance(url, str) and not url.startswith("data:"):
                    raise invalid(
                        f"messages.{index}.content.{part_index}.{kind}",
                        "send media inline as a data: URL: chatver does not fetch remote URLs for it",
                    )


def classify(exc: Exception) -> ChatverError:
    """The gateway error for a LiteLLM exception: 504 on timeouts, 400 when the request was bad, else 502."""
    name = type(exc).__name__
    if isinstance(exc, llm_errors.Timeout):
        return UpstreamTimeout(f"the provider did not answer in time ({name})", type_=name)
    if isinstance(exc, llm_errors.ContextWindowExceededError | llm_errors.BadRequestError) and not isinstance(
        exc, llm_errors.AuthenticationError | llm_errors.NotFoundError | llm_errors.PermissionDeniedError
    ):
        return UpstreamRejected(f"the provider refused the request: {_short(exc)}", type_=name)
    status = getattr(exc, "status_code", None)
    return UpstreamError(f"the provider failed ({name}{f', HTTP {status}' if status else ''})", type_=name)


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return text[:300]


@dataclass
class ChatCall:
    """What one call did, for its chat event."""

    request_id: str
    served: Served
    subject: str | None
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    status: str = "error"
    error: str | None = None
    http_status: int | None = None
    served_by: str | None = None  # the deployment LiteLLM reports; always the chosen version

    def headers(self) -> dict[str, str]:
        headers = {
            "x-chatver-version-id": self.served.version.version_id,
            "x-chatver-request-id": self.request_id,
        }
        if self.served.experiment_id:
            headers["x-chatver-experiment"] = f"{self.served.experiment_id}/{self.served.arm}"
        return headers

    def event(self) -> ChatEvent:
        version = self.served.version
        return ChatEvent(
            request_id=self.request_id,
            bundle=version.bundle,
            version_id=self.served_by or version.version_id,
            assigned_version_id=version.version_id,
            experiment_id=self.served.experiment_id,
            arm=self.served.arm,
            step=self.served.step,
            subject=self.subject,
            sticky=self.served.sticky,
            source="gateway",
            stream=self.stream,
            status=self.status,
            error=self.error,
            http_status=self.http_status,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
            ttft_ms=self.ttft_ms,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost=self.cost,
        )


TOKEN_CAPS = frozenset({"max_tokens", "max_completion_tokens"})


def merge_params(bundle_params: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Client params pass through; the bundle's own params win (a bundle's token cap covers both names)."""
    params = {key: value for key, value in body.items() if key in CLIENT_PARAMS}
    if TOKEN_CAPS & bundle_params.keys():
        for key in TOKEN_CAPS:
            params.pop(key, None)
    params.update({key: value for key, value in bundle_params.items() if key not in DEPLOYMENT_PARAMS})
    return params


def _count(value: Any) -> int | None:
    """A token count as the provider reported it, if it is a sane one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def _usage_of(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    usage = data.get("usage") or {}
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _price(model: str, prompt: int | None, completion: int | None) -> float | None:
    if prompt is None and completion is None:
        return None
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt or 0, completion_tokens=completion or 0
        )
        return float(prompt_cost + completion_cost)
    except Exception:  # unknown price (e.g. a private fine-tune): no cost rather than a failed call
        return None


class Gateway:
    def __init__(
        self,
        *,
        resolver: ActiveResolver,
        llm: LLMRouter,
        writer: EventWriter,
        settings: Settings,
        on_served: Callable[[Served], None] | None = None,
    ) -> None:
        self._resolver = resolver
        self._llm = llm
        self._writer = writer
        self._settings = settings
        self._on_served = on_served  # e.g. the fleet reporter: a dict write, no I/O

    async def _serve(self, model: str, subject: str | None) -> Served:
        selection = parse_model(model)
        if selection.selector is None:
            served = await self._resolver.serve(selection.bundle, subject)
            if self._on_served is not None:  # what this replica serves by default (not pinned calls)
                self._on_served(served)
            return served
        version = await self._resolver.resolve(selection.bundle, selection.selector)
        if version.stage == "archived":
            raise invalid(
                "model", f"{version.version_id} is archived; archived versions do not serve traffic"
            )
        return Served(version)

    def _check_outbound(self, call: ChatCall) -> None:
        params = call.served.version.params
        api_base = params.get("api_base")
        if api_base is not None and origin_of(str(api_base)) not in self._settings.allowed_api_base_set:
            raise UpstreamError(f"{call.served.version.version_id}: its api_base is no longer allowed")
        if "mock_response" in params and not self._settings.allow_mock_responses:
            raise UpstreamError(
                f"{call.served.version.version_id}: mock responses are disabled on this server"
            )

    def _record(self, call: ChatCall) -> None:
        self._writer.submit(call.event())

    async def chat(self, body: dict[str, Any], subject: str | None) -> JSONResponse | StreamingResponse:
        """Serve one chat completion request; every call that reached a version is recorded."""
        served = await self._serve(body["model"], subject)
        call = ChatCall(
            request_id=new_request_id(), served=served, subject=subject, stream=body.get("stream", False)
        )
        version = served.version
        self._writer.expect(call.event())  # feedback can name this request while it still streams
        try:
            values = _prompt_values(version.variables, body.get("prompt_variables") or {})
            system = render_template(source=version.system_prompt, values=values)
            _check_media(version.effective_model, body["messages"])
            messages = [{"role": "system", "content": system}, *body["messages"]]
            params = merge_params(version.params, body)
            self._check_outbound(call)
            if call.stream:
                params["stream_options"] = {"include_usage": True}
            response = await self._llm.complete(version, messages, params, call.stream)
        except ChatverError as exc:
            call.error, call.http_status = exc.type_, exc.status
            self._record(call)
            exc.headers.update(call.headers())
            raise
        except UPSTREAM_ERRORS as exc:
            error = classify(exc)
            logger.warning(
                "%s on %s failed upstream: %s", call.request_id, version.version_id, type(exc).__name__
            )
            call.error, call.http_status = error.type_, error.status
            self._record(call)
            error.headers.update(call.headers())
            raise error from exc
        except Exception:
            # Our own bug, not the provider's: recorded against the version, then a logged 500.
            call.error, call.http_status = "internal", 500
            self._record(call)
            raise
        if call.stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(call, response, include_usage),
                media_type="text/event-stream",
                headers={**call.headers(), "Cache-Control": "no-cache"},
            )
        return self._complete(call, response)

    def _complete(self, call: ChatCall, response: Any) -> JSONResponse:
        data = response.model_dump()
        data = {key: value for key, value in data.items() if not key.startswith("_")}
        data["id"], data["model"] = call.request_id, call.served.version.version_id
        call.prompt_tokens, call.completion_tokens = _usage_of(data)
        hidden = getattr(response, "_hidden_params", {}) or {}
        call.served_by = hidden.get("model_id") or None
        cost = hidden.get("response_cost")
        call.cost = (
            float(cost)
            if cost is not None
            else _price(call.served.version.effective_model, call.prompt_tokens, call.completion_tokens)
        )
        call.status, call.http_status = "ok", 200
        self._record(call)
        return JSONResponse(data, headers=call.headers())

    async def _stream(self, call: ChatCall, response: Any, include_usage: bool) -> AsyncIterator[str]:
        version_id = call.served.version.version_id
        call.served_by = (getattr(response, "_hidden_params", {}) or {}).get("model_id") or None
        try:
            async for chunk in response:
                data = {key: value for key, value in chunk.model_dump().items() if not key.startswith("_")}
                if call.ttft_ms is None and any(
                    (choice.get("delta") or {}).get("content")
                    or (choice.get("delta") or {}).get("tool_calls")
                    for choice in data.get("choices") or []
                ):
                    call.ttft_ms = round((time.perf_counter() - call.started) * 1000, 3)
                if data.get("usage"):
                    call.prompt_tokens, call.completion_tokens = _usage_of(data)
                    cost = (getattr(chunk, "_hidden_params", {}) or {}).get("response_cost")
                    call.cost = float(cost) if cost is not None else None
                if not include_usage:
                    data.pop("usage", None)
                    if not data.get("choices"):
                        continue
                data["id"], data["model"] = call.request_id, version_id
                yield f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
            yield "data: [DONE]\n\n"
            call.status, call.http_status = "ok", 200
        except BaseException as exc:
            if isinstance(exc, Exception):
                error = classify(exc)
                logger.warning(
                    "%s on %s failed mid-stream: %s", call.request_id, version_id, type(exc).__name__
                )
                call.error, call.http_status = error.type_, error.status
                payload = {
                    "error": {
                        "message": error.detail,
                        "type": error.openai_type,
                        "code": error.type_,
                        "param": None,
                    }
                }
                yield f"data: {json.dumps(payload)}\n\n"
            else:  # the client went away (cancelled) or the server is stopping
                call.status, call.error, call.http_status = "cancelled", "client_disconnected", 499
                raise
        finally:
            if call.cost is None and call.status == "ok":
                call.cost = _price(
                    call.served.version.effective_model, call.prompt_tokens, call.completion_tokens
                )
            self._record(call)
            closer = getattr(response, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    logger.debug("closing the upstream stream failed", exc_info=True)
