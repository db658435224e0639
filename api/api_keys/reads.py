"""API key reads: the api keys read model (hashes and prefixes, never keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.api_keys.responses import ApiKeyPage
from api.reads import AdminRead, Limit, Offset

router = APIRouter()


@router.get("", response_model=ApiKeyPage)
async def list_api_keys(read: AdminRead, limit: Limit = 100, offset: Offset = 0
                        ) -> dict[str, Any]:
    """The tenant's API keys (never the keys themselves)."""
    page = await read.models.list_api_keys(read.tenant_id, limit=limit, offset=offset)
    return read.page(page, limit, offset)
