"""Executions: request and cancel runs (writes); list, read, timeline, live events (reads)."""

from __future__ import annotations

from fastapi import APIRouter

from api.executions import live, reads, writes

PREFIX = "/api/v1/executions"
router = APIRouter(tags=["executions"])
router.include_router(writes.router, prefix=PREFIX)
router.include_router(reads.router, prefix=PREFIX)
router.include_router(live.router, prefix=PREFIX)
