"""Crews: define, replace and archive (writes); list and read (reads)."""

from __future__ import annotations

from fastapi import APIRouter

from api.crews import reads, writes

PREFIX = "/api/v1/crews"
router = APIRouter(tags=["crews"])
router.include_router(writes.router, prefix=PREFIX)
router.include_router(reads.router, prefix=PREFIX)
