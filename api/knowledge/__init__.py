"""Knowledge sources: add and archive (writes); list and read (reads)."""

from __future__ import annotations

from fastapi import APIRouter

from api.knowledge import reads, writes

PREFIX = "/api/v1/knowledge"
router = APIRouter(tags=["knowledge"])
router.include_router(writes.router, prefix=PREFIX)
router.include_router(reads.router, prefix=PREFIX)
