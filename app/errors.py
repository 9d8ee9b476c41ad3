"""The ChatverError family and the handlers that render it.

Under ``/api`` errors are RFC 9457 problem details; under ``/v1`` they take the
OpenAI error shape so that unmodified OpenAI clients understand them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("chatver.errors")

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ChatverError(Exception):
    """Base of every error chatver shows a caller: status, a short title, a detail."""

    status: int = 500
    title: str = "Internal Server Error"
    type_: str = "about:blank"
    openai_type: str = "api_error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        type_: str | None = None,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        if type_ is not None:
            self.type_ = type_
        if title is not None:
            self.title = title
        self.extra = extra or {}
        self.headers = headers or {}

    @property
    def param(self) -> str | None:
        return self.errors[0].field if self.errors else None


class BadRequest(ChatverError):
    status, title, type_, openai_type = 400, "Bad Request", "bad-request", "invalid_request_error"


class Unauthorized(ChatverError):
    status, title, type_, openai_type = 401, "Unauthorized", "unauthorized", "authentication_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ChatverError):
    status, title, type_, openai_type = 403, "Forbidden", "forbidden", "permission_error"


class NotFound(ChatverError):
    status, title, type_, openai_type = 404, "Not Found", "not-found", "not_found_error"


class Conflict(ChatverError):
    status, title, type_, openai_type = 409, "Conflict", "conflict", "invalid_request_error"


class PayloadTooLarge(ChatverError):
    status, title, type_, openai_type = 413, "Payload Too Large", "payload-too-large", "invalid_request_error"


class Unprocessable(ChatverError):
    status, title, type_, openai_type = 422, "Unprocessable Content", "validation", "invalid_request_error"


class ServiceUnavailable(ChatverError):
    status, title, type_, openai_type = 503, "Service Unavailable", "unavailable", "api_error"


def invalid(field: str, message: str) -> Unprocessable:
    """A 422 naming one field."""
    return Unprocessable(f"{field}: {message}", errors=[FieldError(field, message)])


def is_gateway_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_payload(path: str, exc: ChatverError, request_id: str | None) -> tuple[dict[str, Any], str]:
    """The body and media type of an error: OpenAI's shape under /v1, problem+json elsewhere."""
    if is_gateway_path(path):
        body: dict[str, Any] = {
            "error": {"message": exc.detail, "type": exc.openai_type, "code": exc.type_, "param": exc.param}
        }
        return body, "application/json"
    problem: dict[str, Any] = {
        "type": exc.type_,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if request_id:
        problem["request_id"] = request_id
    if exc.errors:
        problem["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    problem.update(exc.extra)
    return problem, PROBLEM_JSON


def error_response(request: Request, exc: ChatverError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    body, media_type = error_payload(request.url.path, exc, request_id)
    headers = dict(exc.headers)
    if request_id:
        # 500s are rendered outside the request-id middleware, so the header is set here too.
        headers["x-request-id"] = request_id
    return JSONResponse(body, status_code=exc.status, headers=headers, media_type=media_type)


_TYPE_TAGS = frozenset(
    {"int", "float", "str", "bool", "none", "dict", "list", "tuple", "set", "bytes", "enum"}
)
_TAG_PREFIXES = ("function-", "json-or-python", "constrained-", "lax-", "strict-", "nullable", "union")


def _is_type_tag(part: str) -> bool:
    """pydantic puts the tried member of a union into the location (value.int): not a field."""
    return part in _TYPE_TAGS or "[" in part or part.startswith(_TAG_PREFIXES)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(p for p in parts if not _is_type_tag(p)) or "body"


def validation_error(exc: RequestValidationError | ValidationError) -> Unprocessable:
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        field = _loc_to_field(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if (field, message) in seen:
            continue
        seen.add((field, message))
        errors.append(FieldError(field, message))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or "invalid request"
    return Unprocessable(detail, errors=errors)


ErrorPages = Callable[[Request, ChatverError], Response | None]


def respond(request: Request, exc: ChatverError) -> Response:
    """The error as the app's pages render it (the console under /ui), else as ``error_response``."""
    pages: ErrorPages | None = getattr(request.app.state, "error_pages", None)
    page = pages(request, exc) if pages is not None else None
    return page if page is not None else error_response(request, exc)


def add_exception_handlers(app: FastAPI, pages: ErrorPages | None = None) -> None:
    """Render every error as problem+json under /api and as an OpenAI error under /v1; ``pages``
    may answer first with a page of its own (the console renders HTML under /ui)."""

    app.state.error_pages = pages

    @app.exception_handler(ChatverError)
    async def _chatver(request: Request, exc: ChatverError) -> Response:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return respond(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        status = HTTPStatus(exc.status_code)
        err = ChatverError(
            str(exc.detail), title=status.phrase, type_=status.phrase.lower().replace(" ", "-")
        )
        err.status = exc.status_code
        err.openai_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
        err.headers = dict(exc.headers or {})
        return respond(request, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", None)
        logger.exception(
            "unhandled error on %s %s (request %s)", request.method, request.url.path, request_id
        )
        return respond(
            request, ChatverError(f"internal error; quote request id {request_id} when reporting it")
        )
