"""The request guard (api/limits.py): what a request meets before any route runs, in order.
Headers, the declared body size, the key (before the body is read or parsed), the rate, the
body itself; and an unknown key answered without waiting out the catch-up bound."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.e2e.conftest import AGENT, App, embedded_app, settings_for


async def test_an_unauthenticated_request_is_401_before_its_body_is_parsed(app: App) -> None:
    malformed = await app.http.post("/api/v1/agents", content=b"{not json",
                                    headers={"Content-Type": "application/json"})
    assert malformed.status_code == 401, malformed.text
    assert malformed.json()["error"] == "unauthorized"
    assert malformed.headers["WWW-Authenticate"] == "Bearer"
    # the open paths stay open, also behind a proxy that mounts Kasal under a root path
    assert (await app.http.get("/health/live")).status_code == 200
    asgi = app.http._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(asgi, root_path="/kasal"),
                                 base_url="http://kasal") as mounted:
        assert (await mounted.get("/kasal/health/live")).status_code == 200
        assert (await mounted.get("/kasal/api/v1/agents")).status_code == 401


async def test_a_declared_body_over_the_limit_is_413_before_authentication(app: App) -> None:
    too_big = await app.http.post(
        "/api/v1/agents", content=b"{}",
        headers={"Content-Length": str(2 * 1_048_576), "Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large"
    assert "KASAL_MAX_BODY_BYTES" in too_big.json()["message"]


async def test_a_streamed_body_over_the_limit_is_413_and_appends_nothing(app: App) -> None:
    async with await app.client("acme", "editor") as acme:
        head = await app.kasal.store.head_position()

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            yield b'{"role": "R", "goal": "g", "backstory": "'
            for _ in range(20):
                yield b"x" * 65_536
            yield b'"}'

        response = await acme.post("/api/v1/agents", content=chunks(),
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        assert await app.kasal.store.head_position() == head
        # just under the limit, a body is read and parsed like any other (and refused here
        # by the field's own limit, naming it)
        fits = await acme.post("/api/v1/agents", json={**AGENT, "backstory": "x" * 900_000})
        assert fits.status_code == 422, fits.text
        assert fits.json()["details"][0]["field"] == "backstory"
        assert await app.kasal.store.head_position() == head


async def test_too_many_or_too_large_headers_are_431(app: App) -> None:
    async with await app.client("acme", "viewer") as acme:
        many = await acme.get("/api/v1/agents",
                              headers={f"X-Filler-{n}": "1" for n in range(120)})
        large = await acme.get("/api/v1/agents", headers={"X-Filler": "x" * 40_000})
        fine = await acme.get("/api/v1/agents", headers={"X-Filler": "x" * 4_000})
    for refused in (many, large):
        assert refused.status_code == 431
        assert refused.json()["error"] == "headers_too_large"
    assert fine.status_code == 200


async def test_an_unknown_key_is_refused_without_waiting_out_the_catch_up_bound(
    app: App,
) -> None:
    """With nothing in flight, the read model has all the log has: the key does not exist.
    The bound is raised to an hour here, so a guard that waited it out would hang."""
    asgi = app.http._transport.app  # type: ignore[attr-defined]
    services = asgi.state.query_services
    asgi.state.query_services = dataclasses.replace(services, catch_up_s=3600)
    try:
        unknown = await asyncio.wait_for(
            app.http.get("/api/v1/agents", headers={"Authorization": "Bearer kasal_nope"}),
            timeout=60)
        assert unknown.status_code == 401
        assert unknown.json()["message"] == "unknown API key"
        # a key issued a moment ago is still found (the projection catches up to the head)
        key = await app.key("acme", "viewer")
        issued = await app.http.get("/api/v1/agents", headers={"Authorization": f"Bearer {key}"})
        assert issued.status_code == 200
    finally:
        asgi.state.query_services = services


async def test_rates_are_limited_per_key_and_per_tenant_with_retry_after(
    tmp_path: Path,
) -> None:
    # slow refills (a token every 7-10 s), buckets of 2 (a key) and 3 (the tenant)
    settings = settings_for(tmp_path, KASAL_RATE_LIMIT_PER_KEY=0.1,
                            KASAL_RATE_LIMIT_PER_TENANT=0.15, KASAL_RATE_LIMIT_BURST_S=20)
    async with embedded_app(settings) as app:
        http = app.http
        first, second, third = [await app.key("acme", "viewer") for _ in range(3)]
        other_tenant = await app.key("globex", "viewer")

        async def get(key: str) -> httpx.Response:
            return await http.get("/api/v1/agents", headers={"Authorization": f"Bearer {key}"})

        assert [(await get(first)).status_code for _ in range(2)] == [200, 200]
        limited = await get(first)  # the key's bucket is empty (the tenant's is not)
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        assert (await get(second)).status_code == 200  # the tenant's last token
        tenant_limited = await get(third)
        assert tenant_limited.status_code == 429
        assert (await get(other_tenant)).status_code == 200
        # refusals come before the rate: an unknown key costs nobody's tokens
        assert (await get("kasal_unknown")).status_code == 401


async def test_a_correlation_id_is_kept_as_sent_or_refused_whole(app: App) -> None:
    """Every store keeps the id as it is (a NUL would stall PostgreSQL's projector): an id
    that is not 1-200 visible ASCII characters is 422, never cut short or passed on."""
    async with await app.client("acme", "editor") as acme:
        kept = await acme.post("/api/v1/agents", json=AGENT,
                               headers={"X-Correlation-ID": "ticket-42/" + "x" * 190})
        assert kept.status_code == 201, kept.text
        assert kept.headers["X-Correlation-ID"] == "ticket-42/" + "x" * 190
        made = await acme.get("/api/v1/agents")
        assert len(made.headers["X-Correlation-ID"]) == 36  # none sent: a new one
        head = await app.kasal.store.head_position()
        for bad in (b"x" * 201, b"tick\x00et", b"two words", b"caf\xe9", b"tab\there"):
            refused = await acme.post("/api/v1/agents", json=AGENT,
                                      headers={b"X-Correlation-ID": bad})
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"] == "invalid_correlation_id"
            assert "X-Correlation-ID" in refused.json()["message"]
            assert refused.headers["X-Correlation-ID"].encode("latin-1") != bad
        assert await app.kasal.store.head_position() == head
