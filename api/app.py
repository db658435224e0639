"""The FastAPI application: one router per resource, the error mapping, health and docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import agents, api_keys, audit, crews, executions, search
from api.errors import install_error_handlers
from api.limits import Limits, RequestGuard
from api.services import QueryServices
from api.writes import CORRELATION_HEADER
from commands.bus import CommandBus
from commands.context import correlated
from domain.ids import new_id

log = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# what any route may answer before it runs (api/limits.py), documented on every one
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, an unknown or a revoked one"},
    408: {"description": "the body did not arrive in time"},
    413: {"description": "the body is over KASAL_MAX_BODY_BYTES"},
    429: {"description": "over the key's or the tenant's rate; see Retry-After"},
    431: {"description": "too many headers, or too large"},
}
ROUTERS = (agents.router, crews.router, executions.router, api_keys.router, audit.router,
           search.router)


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


class CorrelationMiddleware:
    """Every request runs under a correlation id (the client's ``X-Correlation-ID``, else a
    new one): its log lines and the events it causes carry it, and the response echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(CORRELATION_HEADER.lower().encode(), b"")
        correlation_id = sent.decode("latin-1").strip()[:200] or new_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-correlation-id", correlation_id.encode("latin-1"))]
            await send(message)

        with correlated(correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:  # answered 500 outside: logged here, with the request's id
                log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                raise


def create_app(
    bus: CommandBus,
    query_services: QueryServices,
    *,
    ready: Callable[[], Awaitable[dict[str, Any]]],
    docs_enabled: bool = True,
    lifespan: Lifespan | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Kasal",
        version="1",
        description="Event-sourced platform for defining and running CrewAI agent crews.",
        docs_url="/api-docs" if docs_enabled else None,
        redoc_url="/api-redoc" if docs_enabled else None,
        openapi_url="/api-openapi.json" if docs_enabled else None,
        lifespan=lifespan or _no_lifespan,
    )
    app.state.bus = bus
    app.state.query_services = query_services
    install_error_handlers(app)
    # added first, so inside the correlation middleware: its refusals carry the request's id
    app.add_middleware(RequestGuard, limits=limits or Limits())
    app.add_middleware(CorrelationMiddleware)
    for router in ROUTERS:
        app.include_router(router, responses=REFUSALS)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def is_ready() -> JSONResponse:
        """The stores answer and the processors run."""
        checks = await ready()
        status = 200 if all(v == "ok" for v in checks.values()) else 503
        return JSONResponse(
            {"status": "ok" if status == 200 else "unavailable", **checks}, status_code=status
        )

    return app
