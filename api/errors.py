"""Every error a client can meet, mapped to its HTTP status and code here, in one place.
Codes are snake_case; the README lists them all."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import problems as p
from api.workspace.port import WorkspacePathRefused
from commands.errors import (
    IdempotencyKeyReused,
    MissingCredentials,
    NotFound,
    StaleVersion,
    StoreUnavailable,
)
from domain.errors import (
    AlreadyArchived,
    AlreadyStarted,
    DomainError,
    ExecutionFinished,
    InvalidDefinition,
    InvalidTransition,
    TamperedEvent,
)
from domain.registry import UnknownEventType, UnreadableHistory
from projections.connections import ReadModelUnavailable

log = logging.getLogger(__name__)
RETRY_SOON = {"Retry-After": "2"}

# error -> (status, code); the most specific class of an error wins
ERROR_CODES: dict[type[Exception], tuple[int, str]] = {
    # the request itself
    p.Unauthorized: (401, "unauthorized"),
    p.Forbidden: (403, "forbidden"),
    p.ResourceNotFound: (404, "not_found"),
    p.InvalidIfMatch: (422, "invalid_if_match"),
    p.InvalidIdempotencyKey: (422, "invalid_idempotency_key"),
    p.InvalidLastEventId: (422, "invalid_last_event_id"),
    p.InvalidCorrelationId: (422, "invalid_correlation_id"),
    p.InvalidQuery: (422, "validation_error"),
    p.PositionAhead: (422, "min_position_ahead"),
    p.PayloadTooLarge: (413, "payload_too_large"),
    p.FileTooLarge: (413, "file_too_large"),
    WorkspacePathRefused: (422, "invalid_workspace_path"),
    p.HeadersTooLarge: (431, "headers_too_large"),
    p.RateLimited: (429, "rate_limited"),
    p.BodyTimeout: (408, "request_timeout"),
    p.ProjectionBehind: (503, "projection_behind"),
    p.TokenKeysUnavailable: (503, "token_keys_unavailable"),
    p.RevocationPending: (503, "revocation_pending"),
    p.LiveFeedUnavailable: (503, "live_unavailable"),
    p.SearchUnavailable: (503, "search_unavailable"),
    p.WorkspaceUnavailable: (503, "workspace_unavailable"),
    p.ApiError: (400, "bad_request"),
    # the command side and the domain
    NotFound: (404, "not_found"),
    StaleVersion: (409, "stale_version"),
    AlreadyArchived: (409, "already_archived"),
    AlreadyStarted: (409, "already_started"),
    ExecutionFinished: (409, "execution_finished"),
    UnreadableHistory: (409, "unreadable_history"),
    InvalidTransition: (409, "invalid_transition"),
    InvalidDefinition: (422, "invalid_definition"),
    IdempotencyKeyReused: (422, "idempotency_key_reused"),
    MissingCredentials: (422, "missing_credentials"),
    UnknownEventType: (409, "unknown_event_type"),
    TamperedEvent: (500, "tampered_event"),
    DomainError: (400, "bad_request"),
    # backing services: not the client's fault, nor a bug; retry
    StoreUnavailable: (503, "store_unavailable"),
    ReadModelUnavailable: (503, "service_unavailable"),
    ConnectionError: (503, "service_unavailable"),
}
# besides: a body, path or query the route's models refuse, and Starlette's own (405...)
VALIDATION_ERROR = "validation_error"
HTTP_ERROR = "http_error"


def status_and_code(error: Exception) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    raise LookupError(f"no status for {type(error).__name__}")


def every_code() -> list[str]:
    """Every error code the API can answer with (the README lists them)."""
    return sorted({code for _, code in ERROR_CODES.values()} | {VALIDATION_ERROR, HTTP_ERROR})


class ErrorBody(BaseModel):
    """Every refusal's body: a stable code, and a message that says what to fix."""

    error: str = Field(description="a stable snake_case code (see the README's table)")
    message: str = Field(description="what went wrong and what to do about it")
    details: list[dict[str, str]] | None = Field(
        None, description="validation_error: each field and its problem")


UNPARSEABLE_BODY = "There was an error parsing the body"  # FastAPI's, for a body not UTF-8


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def respond(error: Exception) -> JSONResponse:
    """The answer to a mapped error (``LookupError`` for one that is not: a bug, a 500)."""
    status, code = status_and_code(error)
    headers = error.headers if isinstance(error, p.ApiError) else None
    message = error.message if isinstance(error, p.ApiError) else str(error)
    if status == 503 and not isinstance(error, p.ApiError):
        log.warning("a backing service is unavailable: %r (cause: %r)", error,
                    error.__cause__)
        headers = RETRY_SOON
        if not isinstance(error, StoreUnavailable):
            message = (f"a backing service is unavailable ({type(error).__name__}); retry "
                       "shortly (with the same Idempotency-Key for a write)")
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def _mapped(_: Request, error: Exception) -> JSONResponse:
    return respond(error)


def install_error_handlers(app: FastAPI) -> None:
    for error_class in ERROR_CODES:
        app.add_exception_handler(error_class, _mapped)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": _location(tuple(e.get("loc", ()))), "problem": e.get("msg", "invalid")}
            for e in error.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return JSONResponse(
            error_body(VALIDATION_ERROR, message, details=details), status_code=422
        )

    @app.exception_handler(ValidationError)
    async def _invalid_command(_: Request, error: ValidationError) -> JSONResponse:
        # a command built in a route from path parameters (an id too long, blank, ...)
        problems = [
            f"{_location(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}"
            for e in error.errors()
        ]
        return JSONResponse(error_body(VALIDATION_ERROR, "; ".join(problems)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and error.detail == UNPARSEABLE_BODY:  # not UTF-8
            return JSONResponse(error_body(
                VALIDATION_ERROR, "body: not JSON text (it must be UTF-8 encoded)",
                details=[{"field": "body", "problem": "not UTF-8 encoded JSON"}]),
                status_code=422)
        return JSONResponse(
            error_body(HTTP_ERROR, str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
