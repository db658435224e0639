"""The request guard: every limit a request meets before a route sees it, in the order that
keeps an unauthenticated or oversized request cheap. Headers (count, bytes: 431), the declared
body size (413), the caller's key (401: before any body is read or parsed), the key's and the
tenant's rate (429 with Retry-After), the URL's text (422: a NUL that PostgreSQL cannot compare
with), then the body itself, read up to the limit (413).

One body is not held to ``max_body_bytes``: a workspace upload (``PUT`` under
``UPLOAD_PREFIX``) is a file, not JSON to parse, and is held to the workspace's own file limit
instead (20 MiB; its declared size is 413 up front as any body's). It is not read here but
handed on as it arrives, each part within the body timeout, for the route to count up to that
limit: a 20 MiB file is never buffered twice, nor anything past the limit at all."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import principal_for
from api.errors import respond
from api.problems import (
    BodyTimeout,
    FileTooLarge,
    HeadersTooLarge,
    InvalidQuery,
    PayloadTooLarge,
    RateLimited,
)
from api.services import QueryServices
from domain.text import problem_of

OPEN_PATHS = ("/health/", "/api-docs", "/api-redoc", "/api-openapi.json")
BODY_TIMEOUT_S = 30.0  # a body that does not arrive in this long is 408
UPLOAD_PREFIX = "/api/v1/workspace/files/"  # PUT: streamed to the route (module docstring)


class ClientGone(Exception):
    """The client hung up while its body was read: nobody to answer."""


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 32_768
    max_headers: int = 100
    per_key_per_s: float = 0.0  # sustained requests a second; 0: no limit
    per_tenant_per_s: float = 0.0
    burst_s: float = 2.0  # a bucket holds this many seconds' worth of requests


@dataclass
class TokenBuckets:
    """One bucket per name, refilled at ``rate`` a second up to ``rate * burst_s``."""

    rate: float
    burst_s: float
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # name: tokens, at

    def wait_s(self, name: str, *, take: bool = True) -> float:
        """0 if ``name`` has a token (taken, with ``take``), else the seconds until it has."""
        if self.rate <= 0:
            return 0.0
        now, capacity = self.clock(), max(1.0, self.rate * self.burst_s)
        tokens, at = self.buckets.get(name, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * self.rate)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self.buckets[name] = (tokens - 1 if take else tokens, now)
        return 0.0


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the ``root_path`` a proxy mounts it under."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root) else path


def upload_limit(scope: Scope) -> int | None:
    """The file limit of a workspace upload this app serves; None for any other request."""
    if scope.get("method") != "PUT" or not route_path(scope).startswith(UPLOAD_PREFIX):
        return None
    files = getattr(scope["app"].state, "workspace_files", None)
    return None if files is None else int(files.max_file_bytes)


def check_url(scope: Scope) -> None:
    """The path and the query parameters, as the routes will read them (percent-decoded), are
    text every store can hold: a NUL in an id or a filter would reach PostgreSQL, which refuses
    it (an error of the database, not of the request)."""
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    texts = [("the path", str(scope.get("path", "")))] + [
        (f"query parameter {name!r}", text)
        for name, value in parse_qsl(query, keep_blank_values=True) for text in (name, value)]
    for where, text in texts:
        if (problem := problem_of(text)) is not None:
            raise InvalidQuery(f"{where} {problem}")


class RequestGuard:
    """ASGI middleware; the principal it authenticated is ``request.state.principal``."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.keys = TokenBuckets(limits.per_key_per_s, limits.burst_s)
        self.tenants = TokenBuckets(limits.per_tenant_per_s, limits.burst_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            receive = await self._admit(scope, receive)
        except ClientGone:
            return
        except Exception as error:  # a refusal, or a backing service down (503): as routes do
            try:
                answer = respond(error)
            except LookupError:  # not a mapped error: a bug, answered 500 outside
                raise error from None
            await answer(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except ClientGone:  # an upload's client hung up while the route read it
            return

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        limits = self.limits
        if len(headers) > limits.max_headers:
            raise HeadersTooLarge(f"{len(headers)} headers; at most {limits.max_headers}")
        size = sum(len(k) + len(v) for k, v in headers)
        if size > limits.max_header_bytes:
            raise HeadersTooLarge(f"headers of {size} bytes; at most {limits.max_header_bytes}")
        named = dict(headers)
        declared = named.get(b"content-length", b"").strip()
        upload = upload_limit(scope)
        cap = limits.max_body_bytes if upload is None else upload
        if declared.isdigit() and len(declared) < 20 and int(declared) > cap:
            raise PayloadTooLarge(cap) if upload is None else FileTooLarge(cap)
        if not route_path(scope).startswith(OPEN_PATHS):
            authorization = named.get(b"authorization")
            services: QueryServices = scope["app"].state.query_services
            principal = await principal_for(
                services, authorization.decode("latin-1") if authorization else None)
            scope.setdefault("state", {})["principal"] = principal
            # a token is taken from both buckets or from neither
            wait = (self.keys.wait_s(principal.actor, take=False)
                    or self.tenants.wait_s(principal.tenant_id)
                    or self.keys.wait_s(principal.actor))
            if wait > 0:
                raise RateLimited(math.ceil(wait))
        check_url(scope)
        if upload is not None:
            return streamed(receive)
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                return await self._read_body(receive)
        except TimeoutError:
            raise BodyTimeout(BODY_TIMEOUT_S) from None

    async def _read_body(self, receive: Receive) -> Receive:
        """The whole body (at most the limit), then handed on as one message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone
            size += len(message.get("body", b""))
            if size > self.limits.max_body_bytes:
                raise PayloadTooLarge(self.limits.max_body_bytes)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        first: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return first
            return await receive()

        return replay


def streamed(receive: Receive) -> Receive:
    """``receive`` for a body the route reads itself: each part within the body timeout
    (``BodyTimeout``: 408), and a client that hung up is ``ClientGone`` (nobody to answer)."""

    async def each_part() -> Message:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                message = await receive()
        except TimeoutError:
            raise BodyTimeout(BODY_TIMEOUT_S) from None
        if message["type"] != "http.request":
            raise ClientGone
        return message

    return each_part
