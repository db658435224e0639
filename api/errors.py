"""Every error a client can cause, mapped to one HTTP status in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.problems import ApiError, error_body
from commands.errors import IdempotencyKeyReused, NotFound, StaleVersion
from commands.ports import StoreUnavailable
from domain.errors import DomainError, InvalidDefinition, InvalidTransition, TamperedEvent

log = logging.getLogger(__name__)


def status_for(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, StaleVersion | InvalidTransition):
        return 409
    if isinstance(error, InvalidDefinition | IdempotencyKeyReused):
        return 422
    if isinstance(error, TamperedEvent):
        return 500
    return 400


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(error.code, error.message), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, error: DomainError) -> JSONResponse:
        status = status_for(error)
        code = type(error).__name__
        return JSONResponse(error_body(code, str(error)), status_code=status)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, error: StoreUnavailable) -> JSONResponse:
        log.warning("event store unavailable: %s", error)
        return JSONResponse(
            error_body("store_unavailable", str(error)), status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    async def _backend_down(_: Request, error: Exception) -> JSONResponse:
        # a database or broker that cannot be reached is not the client's fault, nor a bug
        log.warning("a backing service is unavailable: %r", error)
        return JSONResponse(
            error_body("service_unavailable",
                       f"a backing service is unavailable ({type(error).__name__}); retry "
                       "shortly (with the same Idempotency-Key for a write)"),
            status_code=503, headers={"Retry-After": "2"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{_location(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}"
            for e in error.errors()
        ]
        details = [
            {"field": _location(tuple(e.get("loc", ()))), "problem": e.get("msg")}
            for e in error.errors()
        ]
        return JSONResponse(
            error_body("validation_error", "; ".join(problems), details=details),
            status_code=422,
        )

    @app.exception_handler(ValidationError)
    async def _invalid_command(_: Request, error: ValidationError) -> JSONResponse:
        # a command built in a route from path parameters (an id too long, blank, ...)
        problems = [
            f"{_location(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}"
            for e in error.errors()
        ]
        return JSONResponse(error_body("validation_error", "; ".join(problems)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body("http_error", str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
