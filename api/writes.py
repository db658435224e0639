"""What every write route shares: the dependency that turns the caller and the write headers
(Idempotency-Key, If-Match, X-Correlation-ID) into the command's context, and the answer."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel, Field

from api.auth import Principal, require
from api.problems import InvalidIdempotencyKey, InvalidIfMatch
from commands.bus import CommandBus
from commands.context import CommandContext, current_correlation_id
from commands.ports import AppendResult
from domain.vocabulary import Role

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
# a version, as ETag gives it: "3", W/"3" or 3; at most 18 ASCII digits
VERSION = re.compile(r'^(?:W/)?(?:"([0-9]{1,18})"|([0-9]{1,18}))$')
CORRELATION_HEADER = "X-Correlation-ID"

IdempotencyKey = Annotated[
    str | None,
    Header(description="retrying with the same key returns the first result, appends nothing"),
]
IfMatch = Annotated[
    str | None, Header(description="the version you read (ETag); a stale one is 409")
]


class WriteResult(BaseModel):
    id: str = Field(description="the aggregate's id")
    version: int = Field(description="the aggregate's version after this command")
    position: int = Field(
        description="global log position of the last event; pass it as "
        "min_position to read your write"
    )


def get_bus(request: Request) -> CommandBus:
    bus: CommandBus = request.app.state.bus
    return bus


BusDep = Annotated[CommandBus, Depends(get_bus)]


def expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    found = VERSION.match(if_match.strip())
    if found is None:
        raise InvalidIfMatch('If-Match must be a version number, e.g. "3"')
    return int(found.group(1) or found.group(2))


def command_context(
    principal: Principal, idempotency_key: str | None, if_match: str | None
) -> CommandContext:
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1-200 printable characters")
    # the request's (CorrelationMiddleware: the client's X-Correlation-ID, else a new one)
    kwargs: dict[str, Any] = {"correlation_id": current_correlation_id.get()}
    if idempotency_key:
        kwargs["command_id"] = idempotency_key
    return CommandContext(
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        expected_version=expected_version(if_match),
        **kwargs,
    )


def write_context(role: Role, *, versioned: bool = False, idempotent: bool = True) -> Any:
    """The dependency of a write route: ``role`` or above, the command's context.
    ``versioned``: the route takes If-Match; ``idempotent=False``: it refuses an
    Idempotency-Key (a retry could not repeat what the first answer held)."""
    caller = require(role)  # a default value, not an annotation: evaluated here, now

    if versioned:
        async def edit(idempotency_key: IdempotencyKey = None, if_match: IfMatch = None,
                       principal: Principal = caller) -> CommandContext:
            return command_context(principal, idempotency_key, if_match)

        return Depends(edit)
    if not idempotent:
        async def once(request: Request, principal: Principal = caller) -> CommandContext:
            if "Idempotency-Key" in request.headers:
                raise InvalidIdempotencyKey(
                    "this cannot be retried idempotently: send it without an Idempotency-Key"
                )
            return command_context(principal, None, None)

        return Depends(once)

    async def write(idempotency_key: IdempotencyKey = None,
                    principal: Principal = caller) -> CommandContext:
        return command_context(principal, idempotency_key, None)

    return Depends(write)


def written(
    result: AppendResult, response: Response, location: str | None = None
) -> dict[str, Any]:
    response.headers["ETag"] = f'"{result.version}"'
    if location:
        response.headers["Location"] = location
    return {"id": result.aggregate_id, "version": result.version, "position": result.position}
