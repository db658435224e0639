"""API keys: issue and revoke (writes); list (reads). Admin only."""

from __future__ import annotations

from fastapi import APIRouter

from api.api_keys import reads, writes

PREFIX = "/api/v1/api-keys"
router = APIRouter(tags=["api keys"])
router.include_router(writes.router, prefix=PREFIX)
router.include_router(reads.router, prefix=PREFIX)
