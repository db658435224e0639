"""API key reads: the api keys read model (hashes and prefixes, never keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.api_keys.responses import ApiKeyPage
from api.auth import Admin, QueryServicesDep
from api.reads import Limit, MinPosition, Offset, page_body, wait_for

router = APIRouter()


@router.get("", response_model=ApiKeyPage)
async def list_api_keys(
    principal: Admin,
    services: QueryServicesDep,
    response: Response,
    limit: Limit = 100,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """The tenant's API keys (never the keys themselves)."""
    await wait_for(services, min_position)
    page = await services.read_models.list_api_keys(principal.tenant_id, limit=limit, offset=offset)
    return page_body(page, limit, offset, response)
