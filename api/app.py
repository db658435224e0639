"""The FastAPI application: one router per resource, the error mapping, health and docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import agents, api_keys, audit, crews, executions, knowledge, search
from api.errors import ErrorBody, install_error_handlers, respond
from api.limits import Limits, RequestGuard
from api.problems import InvalidCorrelationId
from api.services import QueryServices
from api.workspace import routes as workspace
from api.workspace.port import WorkspaceFiles
from api.writes import CORRELATION_HEADER
from commands.bus import CommandBus
from commands.context import correlated
from domain.ids import new_id

log = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# what any route may answer (the request guard's refusals, api/limits.py, and the mapped
# errors, api/errors.py), documented on every one with the body they share
REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"description": description, "model": ErrorBody} for code, description in (
        (401, "no API key or token, an unknown or a revoked one"),
        (403, "the caller's role is too low for this"),
        (404, "no such resource in the caller's tenant"),
        (408, "the body did not arrive in time"),
        (409, "refused by the resource's state: a stale If-Match, already archived, ..."),
        (413, "the body is over KASAL_MAX_BODY_BYTES"),
        (422, "the request is not valid: the message names what to fix"),
        (429, "over the key's or the tenant's rate; see Retry-After"),
        (431, "too many headers, or too large"),
        (503, "a backing service is away, or the read models are behind; see Retry-After"),
    )
}
ROUTERS = (agents.router, crews.router, executions.router, knowledge.router, api_keys.router,
           audit.router, search.router, workspace.router)


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


MAX_CORRELATION_ID = 200  # the events' correlation_id column


class CorrelationMiddleware:
    """Every request runs under a correlation id (the client's ``X-Correlation-ID``, else a
    new one): its log lines and the events it causes carry it, and the response echoes it.
    A client's id must be 1 to 200 visible ASCII characters (every store keeps it as it is):
    anything else is 422, never cut short or passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(CORRELATION_HEADER.lower().encode(), b"").strip()
        correlation_id = sent.decode("latin-1") or new_id()
        app: ASGIApp = self.app
        if len(sent) > MAX_CORRELATION_ID or not all(0x21 <= c <= 0x7E for c in sent):
            correlation_id = new_id()  # the answer's own
            app = respond(InvalidCorrelationId(
                f"{CORRELATION_HEADER} must be 1 to {MAX_CORRELATION_ID} visible ASCII "
                "characters (letters, digits, punctuation; no spaces)"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-correlation-id", correlation_id.encode("latin-1"))]
            await send(message)

        with correlated(correlation_id):
            try:
                await app(scope, receive, send_with_id)
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
    workspace_files: WorkspaceFiles | None = None,
) -> FastAPI:
    """The app. Without ``workspace_files`` the workspace routes answer 503."""
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
    app.state.workspace_files = workspace_files
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
