"""The FastAPI application: routers, error mapping, health and docs routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.command_routes import router as command_router
from api.errors import install_error_handlers
from api.query_routes import router as query_router
from api.services import QueryServices
from commands.bus import CommandBus

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def create_app(
    bus: CommandBus,
    query_services: QueryServices,
    *,
    ready: Callable[[], Awaitable[dict[str, Any]]],
    docs_enabled: bool = True,
    lifespan: Lifespan | None = None,
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
    app.include_router(command_router)
    app.include_router(query_router)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def is_ready(request: Request) -> JSONResponse:
        """The stores answer and the processors run."""
        checks = await ready()
        status = 200 if all(v == "ok" for v in checks.values()) else 503
        return JSONResponse(
            {"status": "ok" if status == 200 else "unavailable", **checks}, status_code=status
        )

    return app
