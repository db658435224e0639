"""API key writes: issue a key (shown once), revoke one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from api.api_keys.requests import ApiKeyBody
from api.api_keys.responses import IssuedKey
from api.auth import QueryServicesDep
from api.problems import RevocationPending
from api.services import QueryServices, find_soon
from api.writes import BusDep, WriteResult, write_context, written
from commands import messages as m
from commands.context import CommandContext
from domain.api_key import generate_key, hash_key, key_prefix
from domain.errors import AlreadyArchived
from domain.vocabulary import Role

router = APIRouter()
# a retry could not return the key again: issuing is never idempotent
Issue = Annotated[CommandContext, write_context(Role.ADMIN, idempotent=False)]
Revoke = Annotated[CommandContext, write_context(Role.ADMIN)]


@router.post("", status_code=201, response_model=IssuedKey)
async def issue_api_key(
    body: ApiKeyBody, ctx: Issue, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Issue an API key for your tenant; the key is in this response only."""
    key = generate_key()
    command = m.IssueApiKey(
        name=body.name, role=body.role, key_hash=hash_key(key), prefix=key_prefix(key)
    )
    result = await bus.dispatch(command, ctx)
    return {
        **written(result, response, f"/api/v1/api-keys/{result.aggregate_id}"),
        "key": key,
        "prefix": key_prefix(key),
        "role": body.role,
        "tenant_id": ctx.tenant_id,
    }


REVOCATION_WAIT_S = 5.0


@router.delete("/{key_id}", response_model=WriteResult)
async def revoke_api_key(
    key_id: str, ctx: Revoke, bus: BusDep, services: QueryServicesDep, response: Response
) -> dict[str, Any]:
    """Revoke an API key: once this answers, no API process accepts the key."""
    try:
        result = await bus.dispatch(m.RevokeApiKey(api_key_id=key_id), ctx)
    except AlreadyArchived:  # revoked before: the same promise holds for this answer
        await refused_everywhere(services, ctx.tenant_id, key_id)
        raise
    await refused_everywhere(services, ctx.tenant_id, key_id)
    return written(result, response)


async def refused_everywhere(services: QueryServices, tenant_id: str, key_id: str) -> None:
    """Wait (bounded) until the read model every API process authenticates against shows the
    key revoked; ``RevocationPending`` (503, retry) if it does not in time."""

    async def revoked() -> bool | None:
        found = await services.read_models.get_api_key(tenant_id, key_id)
        return True if found.item is not None and found.item["revoked"] else None

    # at least REVOCATION_WAIT_S: a revocation is worth a short wait more than a retry (a
    # loaded machine's projector can take over a second)
    bound = max(services.min_position_timeout, REVOCATION_WAIT_S)
    if await find_soon(services, revoked, timeout=bound) is None:
        raise RevocationPending(key_id)
