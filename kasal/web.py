"""Builds the ASGI app for one deployment: Kasal's processors run inside its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from api.limits import Limits
from api.services import QueryServices
from api.tokens import TokenSettings, TokenVerifier
from commands.errors import StoreUnavailable
from kasal.bootstrap import Kasal, build_workspace_files
from kasal.settings import Settings

log = logging.getLogger(__name__)
STUCK_AFTER = 3  # failed attempts at one event before readiness turns red
STUCK_FOR_S = 10.0  # ... over at least this long (a short database blip is not "stuck")


def build_app(kasal: Kasal, *, manage_lifecycle: bool = True) -> FastAPI:
    """The app over a bootstrapped Kasal; with ``manage_lifecycle`` it starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await kasal.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await kasal.stop()

    async def ready() -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await kasal.store.head_position()
            checks["event_store"] = "ok"
        except Exception as error:
            checks["event_store"] = f"error: {type(error).__name__}"
        try:
            await kasal.read_models.position()
            checks["read_models"] = "ok"
        except Exception as error:
            checks["read_models"] = f"error: {type(error).__name__}"
        checks["processors"] = "ok" if kasal.running else "stopped"
        try:  # any process's processor that cannot get past an event: not ready, and why
            stuck = [f for f in await kasal.processor_failures()
                     if f.processor == kasal.projector.name and f.stuck(STUCK_AFTER, STUCK_FOR_S)]
        except Exception as error:
            stuck = []
            checks["read_models"] = f"error: {type(error).__name__}"
        if stuck:
            checks["processors"] = "failing: " + "; ".join(f.headline() for f in stuck)
        return checks

    async def head_unless_away() -> int | None:
        try:
            return await kasal.store.head_position()
        except StoreUnavailable:  # reads go on from the read models while the log is away
            return None

    settings = kasal.settings
    services = QueryServices(
        read_models=kasal.read_models,
        clock=kasal.clock,
        min_position_timeout=kasal.settings.min_position_timeout,
        live=kasal.live,
        search=kasal.search,
        log_head=head_unless_away,
        tokens=token_verifier(settings),
    )
    limits = Limits(
        max_body_bytes=settings.max_body_bytes, max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers, per_key_per_s=settings.rate_limit_per_key,
        per_tenant_per_s=settings.rate_limit_per_tenant, burst_s=settings.rate_limit_burst_s,
    )
    return create_app(
        kasal.bus,
        services,
        ready=ready,
        docs_enabled=settings.docs_enabled,
        lifespan=lifespan,
        limits=limits,
        workspace_files=build_workspace_files(settings),
    )


def token_verifier(settings: Settings) -> TokenVerifier | None:
    if settings.jwt_jwks is None:
        return None
    assert settings.jwt_issuer and settings.jwt_audience  # the settings' own check
    return TokenVerifier(TokenSettings(
        jwks=settings.jwt_jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
        tenant_claim=settings.jwt_tenant_claim, role_claim=settings.jwt_role_claim,
        leeway_s=settings.jwt_leeway_s, algorithms=settings.jwt_algorithm_names,
        max_lifetime_s=settings.jwt_max_lifetime_s))
